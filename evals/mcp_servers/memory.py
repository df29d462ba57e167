"""`memory` server: a knowledge graph in a JSONL file, after `@modelcontextprotocol/server-memory` (npm).

Same tools, schemas, file format and output text as the version MCP-Atlas pins (2025.8.4). MEMORY_FILE_PATH is
a per-run copy of the benchmark's seed (`memory/memories-for-mcp.json`, JSON lines), re-read on every call like
upstream. As upstream, a loaded line is kept whole, so every entity and relation that `read_graph`,
`search_nodes` and `open_nodes` return carries its `"type": "entity"` / `"relation"` key (first, as saved);
`search_nodes` and `open_nodes` return the relations whose two endpoints are both among the entities found.
"""

from __future__ import annotations

import json
import os
import tempfile

from ._base import ToolDef, build_server, dumps, obj, serve_stdio

S = {"type": "string"}
_ENTITY = obj({"name": {**S, "description": "The name of the entity"},
               "entityType": {**S, "description": "The type of the entity"},
               "observations": {"type": "array", "items": S,
                                "description": "An array of observation contents associated with the entity"}},
              ["name", "entityType", "observations"])
_RELATION = obj({"from": {**S, "description": "The name of the entity where the relation starts"},
                 "to": {**S, "description": "The name of the entity where the relation ends"},
                 "relationType": {**S, "description": "The type of the relation"}}, ["from", "to", "relationType"])


class Graph:
    def __init__(self, path: str):
        self.path = path

    def load(self) -> dict:
        graph = {"entities": [], "relations": []}
        if not os.path.exists(self.path):
            return graph
        with open(self.path, encoding="utf-8") as f:
            for line in f:
                if not line.strip():
                    continue
                item = json.loads(line)
                if item.get("type") == "entity":
                    graph["entities"].append(item)
                elif item.get("type") == "relation":
                    graph["relations"].append(item)
        return graph

    def save(self, graph: dict) -> None:
        lines = [json.dumps({"type": "entity", **e}, ensure_ascii=False, separators=(",", ":"))
                 for e in graph["entities"]]  # `{type: "entity", ...e}`: the type key first, loaded or new
        lines += [json.dumps({"type": "relation", **r}, ensure_ascii=False, separators=(",", ":"))
                  for r in graph["relations"]]
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(self.path) or ".", suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as f:  # atomic replace: a crash never truncates the graph
            f.write("\n".join(lines))
        os.replace(tmp, self.path)

    def create_entities(self, a: dict) -> str:
        g = self.load()
        names = {e["name"] for e in g["entities"]}
        new = []
        for e in a["entities"]:
            if e["name"] not in names:
                names.add(e["name"])
                new.append({k: e[k] for k in ("name", "entityType", "observations")})
        g["entities"] += new
        self.save(g)
        return dumps(new)

    def create_relations(self, a: dict) -> str:
        g = self.load()
        def key(r):
            return r["from"], r["to"], r["relationType"]

        seen = {key(r) for r in g["relations"]}
        new = []
        for r in a["relations"]:
            if key(r) not in seen:
                seen.add(key(r))
                new.append({k: r[k] for k in ("from", "to", "relationType")})
        g["relations"] += new
        self.save(g)
        return dumps(new)

    def add_observations(self, a: dict) -> str:
        g = self.load()
        results = []
        for o in a["observations"]:
            entity = next((e for e in g["entities"] if e["name"] == o["entityName"]), None)
            if entity is None:
                raise ValueError(f"Entity with name {o['entityName']} not found")
            added = [c for c in o["contents"] if c not in entity["observations"]]
            entity["observations"] += added
            results.append({"entityName": o["entityName"], "addedObservations": added})
        self.save(g)
        return dumps(results)

    def delete_entities(self, a: dict) -> str:
        g = self.load()
        gone = set(a["entityNames"])
        g["entities"] = [e for e in g["entities"] if e["name"] not in gone]
        g["relations"] = [r for r in g["relations"] if r["from"] not in gone and r["to"] not in gone]
        self.save(g)
        return "Entities deleted successfully"

    def delete_observations(self, a: dict) -> str:
        g = self.load()
        for d in a["deletions"]:
            for e in g["entities"]:
                if e["name"] == d["entityName"]:
                    e["observations"] = [o for o in e["observations"] if o not in d["observations"]]
        self.save(g)
        return "Observations deleted successfully"

    def delete_relations(self, a: dict) -> str:
        g = self.load()
        gone = {(r["from"], r["to"], r["relationType"]) for r in a["relations"]}
        g["relations"] = [r for r in g["relations"] if (r["from"], r["to"], r["relationType"]) not in gone]
        self.save(g)
        return "Relations deleted successfully"

    def read_graph(self, a: dict) -> str:
        return dumps(self.load())

    def _subgraph(self, g: dict, entities: list) -> str:
        names = {e["name"] for e in entities}
        # Relations with both endpoints in the result, as the pinned upstream version does (later versions
        # return those with either endpoint).
        return dumps({"entities": entities,
                      "relations": [r for r in g["relations"] if r["from"] in names and r["to"] in names]})

    def search_nodes(self, a: dict) -> str:
        g, q = self.load(), a["query"].lower()
        return self._subgraph(g, [e for e in g["entities"] if q in e["name"].lower() or q in e["entityType"].lower()
                                  or any(q in o.lower() for o in e["observations"])])

    def open_nodes(self, a: dict) -> str:
        g = self.load()
        return self._subgraph(g, [e for e in g["entities"] if e["name"] in a["names"]])


def tools(g: Graph) -> list[ToolDef]:
    def arr(items, desc=None):
        return {"type": "array", "items": items, **({"description": desc} if desc else {})}

    return [
        ToolDef("create_entities", "Create multiple new entities in the knowledge graph",
                obj({"entities": arr(_ENTITY)}, ["entities"]), g.create_entities),
        ToolDef("create_relations", "Create multiple new relations between entities in the knowledge graph. "
                "Relations should be in active voice", obj({"relations": arr(_RELATION)}, ["relations"]),
                g.create_relations),
        ToolDef("add_observations", "Add new observations to existing entities in the knowledge graph",
                obj({"observations": arr(obj({
                    "entityName": {**S, "description": "The name of the entity to add the observations to"},
                    "contents": arr(S, "An array of observation contents to add")}, ["entityName", "contents"]))},
                    ["observations"]), g.add_observations),
        ToolDef("delete_entities", "Delete multiple entities and their associated relations from the knowledge graph",
                obj({"entityNames": arr(S, "An array of entity names to delete")}, ["entityNames"]),
                g.delete_entities),
        ToolDef("delete_observations", "Delete specific observations from entities in the knowledge graph",
                obj({"deletions": arr(obj({
                    "entityName": {**S, "description": "The name of the entity containing the observations"},
                    "observations": arr(S, "An array of observations to delete")}, ["entityName", "observations"]))},
                    ["deletions"]), g.delete_observations),
        ToolDef("delete_relations", "Delete multiple relations from the knowledge graph",
                obj({"relations": arr(_RELATION, "An array of relations to delete")}, ["relations"]),
                g.delete_relations),
        ToolDef("read_graph", "Read the entire knowledge graph", obj(), g.read_graph),
        ToolDef("search_nodes", "Search for nodes in the knowledge graph based on a query",
                obj({"query": {**S, "description": "The search query to match against entity names, types, and "
                                                   "observation content"}}, ["query"]), g.search_nodes),
        ToolDef("open_nodes", "Open specific nodes in the knowledge graph by their names",
                obj({"names": arr(S, "An array of entity names to retrieve")}, ["names"]), g.open_nodes),
    ]


def main() -> None:
    serve_stdio(build_server("memory-server", "0.6.3", tools(Graph(os.environ["MEMORY_FILE_PATH"]))))


if __name__ == "__main__":
    main()
