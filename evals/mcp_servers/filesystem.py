"""`filesystem` server, after the reference `@modelcontextprotocol/server-filesystem` (npm).

Same tool names, input schemas and output text. The one allowed directory is the virtual `/data`
(ALLOWED_DIR on disk); `_paths.VirtualRoot` refuses any path, `..` or symlink that leaves it.
"""

from __future__ import annotations

import base64
import difflib
import json
import math
import mimetypes
import os
import posixpath
import re
import shutil
import time

import mcp_types as types

from ._base import ToolDef, ToolFailure, build_server, obj, serve_stdio
from ._paths import VirtualRoot

STR = {"type": "string"}
_PATTERNS = {"type": "array", "items": STR, "default": []}


def _fmt_size(n: int) -> str:
    units = ["B", "KB", "MB", "GB", "TB"]
    if n <= 0:
        return "0 B"
    i = math.floor(math.log(n) / math.log(1024))
    if i <= 0:
        return f"{n} B"
    i = min(i, len(units) - 1)
    return f"{n / 1024 ** i:.2f} {units[i]}"


def _js_date(ts: float) -> str:
    # `${date}` in Node: Date.prototype.toString, here in UTC.
    return time.strftime("%a %b %d %Y %H:%M:%S GMT+0000 (Coordinated Universal Time)", time.gmtime(ts))


def glob_regex(pattern: str) -> re.Pattern:
    """minimatch-style glob (`**`, `*`, `?`, `[...]`, `{a,b}`; dot files match) to a full-match regex."""
    out, i = [], 0
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
            continue
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
            continue
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            j = pattern.find("]", i + 1)
            if j < 0:
                out.append(re.escape(c))
            else:
                body = pattern[i + 1:j].replace("\\", "\\\\")
                out.append("[" + ("^" + body[1:] if body.startswith("!") else body) + "]")
                i = j
        elif c == "{":
            j = pattern.find("}", i + 1)
            if j < 0:
                out.append(re.escape(c))
            else:
                out.append("(?:" + "|".join(glob_regex(p).pattern[4:-2] for p in pattern[i + 1:j].split(",")) + ")")
                i = j
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile("(?s:" + "".join(out) + r")\Z")


class FileSystem:
    def __init__(self, root: VirtualRoot):
        self.root = root

    def _read(self, real: str) -> str:
        with open(real, encoding="utf-8", errors="replace", newline="") as f:
            return f.read()

    # -- reading ----------------------------------------------------------------
    def read_text_file(self, a: dict) -> str:
        real = self.root.resolve(a["path"], must_exist=True)
        if a.get("head") and a.get("tail"):
            raise ToolFailure("Cannot specify both head and tail parameters simultaneously")
        text = self._read(real)
        if a.get("tail"):
            return "\n".join(text.replace("\r\n", "\n").split("\n")[-int(a["tail"]):])
        if a.get("head"):
            return "\n".join(text.split("\n")[:int(a["head"])])
        return text

    def read_media_file(self, a: dict) -> types.CallToolResult:
        real = self.root.resolve(a["path"], must_exist=True)
        mime = mimetypes.guess_type(real)[0] or "application/octet-stream"
        with open(real, "rb") as f:
            data = base64.b64encode(f.read()).decode()
        if mime.startswith("image/"):
            item = types.ImageContent(type="image", data=data, mime_type=mime)
        elif mime.startswith("audio/"):
            item = types.AudioContent(type="audio", data=data, mime_type=mime)
        else:
            item = types.EmbeddedResource(type="resource", resource=types.BlobResourceContents(
                uri="file://" + self.root.to_virtual(real), mime_type=mime, blob=data))
        return types.CallToolResult(content=[item])

    def read_multiple_files(self, a: dict) -> str:
        parts = []
        for p in a["paths"]:
            try:
                parts.append(f"{p}:\n{self._read(self.root.resolve(p, must_exist=True))}\n")
            except Exception as e:  # noqa: BLE001 - one failed read does not stop the others
                parts.append(f"{p}: Error - {e}")
        return "\n---\n".join(parts)

    def get_file_info(self, a: dict) -> str:
        real = self.root.resolve(a["path"], must_exist=True)
        st = os.stat(real)
        info = {"size": st.st_size, "created": _js_date(st.st_ctime), "modified": _js_date(st.st_mtime),
                "accessed": _js_date(st.st_atime), "isDirectory": os.path.isdir(real),
                "isFile": os.path.isfile(real), "permissions": oct(st.st_mode)[-3:]}
        return "\n".join(f"{k}: {json.dumps(v) if isinstance(v, bool) else v}" for k, v in info.items())

    # -- listing ----------------------------------------------------------------
    def _entries(self, real: str) -> list[os.DirEntry]:
        with os.scandir(real) as it:
            return sorted(it, key=lambda e: e.name)

    def list_directory(self, a: dict) -> str:
        real = self.root.resolve(a["path"], must_exist=True)
        return "\n".join(f"{'[DIR]' if e.is_dir() else '[FILE]'} {e.name}" for e in self._entries(real))

    def list_directory_with_sizes(self, a: dict) -> str:
        real = self.root.resolve(a["path"], must_exist=True)
        # lstat for links: a link's size, not that of a target that may lie outside the root
        rows = [(e.name, e.is_dir(), 0 if e.is_dir() else e.stat(follow_symlinks=False).st_size)
                for e in self._entries(real)]
        rows.sort(key=(lambda r: -r[2]) if a.get("sortBy") == "size" else (lambda r: r[0].lower()))
        lines = [f"{'[DIR]' if d else '[FILE]'} {n.ljust(30)} {'' if d else _fmt_size(s).rjust(10)}"
                 for n, d, s in rows]
        files = [r for r in rows if not r[1]]
        lines += ["", f"Total: {len(files)} files, {len(rows) - len(files)} directories",
                  f"Combined size: {_fmt_size(sum(r[2] for r in files))}"]
        return "\n".join(lines)

    def directory_tree(self, a: dict) -> str:
        excludes = [glob_regex(p) for p in a.get("excludePatterns") or []]
        top = a["path"]

        def build(virtual: str) -> list:
            out = []
            for e in self._entries(self.root.resolve(virtual, must_exist=True)):
                child = posixpath.join(virtual, e.name)
                rel = posixpath.relpath(child, top)
                if any(x.match(rel) or x.match(e.name) for x in excludes):
                    continue
                node = {"name": e.name, "type": "directory" if e.is_dir() else "file"}
                if e.is_dir():
                    node["children"] = build(child)
                out.append(node)
            return out

        return json.dumps(build(top), indent=2, ensure_ascii=False)

    def search_files(self, a: dict) -> str:
        start = self.root.resolve(a["path"], must_exist=True)
        want = glob_regex(a["pattern"])
        excludes = [glob_regex(p) for p in a.get("excludePatterns") or []]
        found = []
        for dirpath, dirnames, filenames in os.walk(start):
            dirnames.sort()
            for name in sorted(dirnames + filenames):
                full = os.path.join(dirpath, name)
                rel = os.path.relpath(full, start)
                if os.path.islink(full) and not os.path.realpath(full).startswith(self.root.real + os.sep):
                    continue
                if any(x.match(rel) for x in excludes):
                    if name in dirnames:
                        dirnames.remove(name)
                    continue
                if want.match(rel):
                    found.append(self.root.to_virtual(full))
        return "\n".join(found) if found else "No matches found"

    def list_allowed_directories(self, a: dict) -> str:
        return f"Allowed directories:\n{self.root.virtual}"

    # -- writing ----------------------------------------------------------------
    def write_file(self, a: dict) -> str:
        real = self.root.resolve(a["path"])
        if os.path.islink(real):
            raise ToolFailure(f"Refusing to write through a symlink: {a['path']}")
        with open(real, "w", encoding="utf-8") as f:
            f.write(a["content"])
        return f"Successfully wrote to {a['path']}"

    def edit_file(self, a: dict) -> str:
        real = self.root.resolve(a["path"], must_exist=True)
        original = self._read(real).replace("\r\n", "\n")
        content = original
        for edit in a["edits"]:
            old, new = edit["oldText"].replace("\r\n", "\n"), edit["newText"].replace("\r\n", "\n")
            if old in content:
                content = content.replace(old, new, 1)
                continue
            # Upstream's fallback: a line-by-line match ignoring surrounding whitespace.
            old_lines, lines = old.split("\n"), content.split("\n")
            for i in range(len(lines) - len(old_lines) + 1):
                if all(o.strip() == c.strip() for o, c in zip(old_lines, lines[i:i + len(old_lines)], strict=True)):
                    indent = re.match(r"\s*", lines[i]).group(0)
                    new_lines = new.split("\n")
                    new_lines[0] = indent + new_lines[0].lstrip()
                    lines[i:i + len(old_lines)] = new_lines
                    content = "\n".join(lines)
                    break
            else:
                raise ToolFailure(f"Could not find exact match for edit:\n{edit['oldText']}")
        name = self.root.to_virtual(real)
        body = "".join(difflib.unified_diff(original.splitlines(True), content.splitlines(True),
                                            f"{name}\toriginal", f"{name}\tmodified"))
        diff = f"Index: {name}\n{'=' * 67}\n{body}"
        ticks = 3
        while "`" * ticks in diff:
            ticks += 1
        if not a.get("dryRun"):
            with open(real, "w", encoding="utf-8") as f:
                f.write(content)
        return f"{'`' * ticks}diff\n{diff}{'`' * ticks}\n\n"

    def create_directory(self, a: dict) -> str:
        os.makedirs(self.root.resolve(a["path"]), exist_ok=True)  # below a checked ancestor (mkdir -p)
        self.root.resolve(a["path"], must_exist=True)
        return f"Successfully created directory {a['path']}"

    def move_file(self, a: dict) -> str:
        src = self.root.resolve(a["source"], must_exist=True)
        dst = self.root.resolve(a["destination"])
        if os.path.lexists(dst):
            raise ToolFailure(f"Destination already exists: {a['destination']}")
        shutil.move(src, dst)
        return f"Successfully moved {a['source']} to {a['destination']}"


def tools(fs: FileSystem) -> list[ToolDef]:
    head_tail = {"path": STR,
                 "tail": {"type": "number", "description": "If provided, returns only the last N lines of the file"},
                 "head": {"type": "number", "description": "If provided, returns only the first N lines of the file"}}
    only = "Only works within allowed directories."
    return [
        ToolDef("read_file", "Read the complete contents of a file as text. DEPRECATED: Use read_text_file instead.",
                obj(head_tail, ["path"]), fs.read_text_file),
        ToolDef("read_text_file",
                "Read the complete contents of a file from the file system as text. Handles various text encodings "
                "and provides detailed error messages if the file cannot be read. Use this tool when you need to "
                "examine the contents of a single file. Use the 'head' parameter to read only the first N lines of "
                "a file, or the 'tail' parameter to read only the last N lines of a file. Operates on the file as "
                f"text regardless of extension. {only}", obj(head_tail, ["path"]), fs.read_text_file),
        ToolDef("read_media_file",
                "Read a file and return it as a base64-encoded content block with its MIME type. Image and audio "
                "files are returned as image/audio content; any other file type is returned as an embedded "
                f"resource. {only}", obj({"path": STR}, ["path"]), fs.read_media_file),
        ToolDef("read_multiple_files",
                "Read the contents of multiple files simultaneously. This is more efficient than reading files one "
                "by one when you need to analyze or compare multiple files. Each file's content is returned with its "
                f"path as a reference. Failed reads for individual files won't stop the entire operation. {only}",
                obj({"paths": {"type": "array", "items": STR, "minItems": 1,
                               "description": "Array of file paths to read. Each path must be a string pointing to a "
                                              "valid file within allowed directories."}}, ["paths"]),
                fs.read_multiple_files),
        ToolDef("write_file",
                "Create a new file or completely overwrite an existing file with new content. Use with caution as it "
                f"will overwrite existing files without warning. Handles text content with proper encoding. {only}",
                obj({"path": STR, "content": STR}, ["path", "content"]), fs.write_file),
        ToolDef("edit_file",
                "Make line-based edits to a text file. Each edit replaces exact line sequences with new content. "
                f"Returns a git-style diff showing the changes made. {only}",
                obj({"path": STR,
                     "edits": {"type": "array", "items": obj({
                         "oldText": {"type": "string", "description": "Text to search for - must match exactly"},
                         "newText": {"type": "string", "description": "Text to replace with"}},
                         ["oldText", "newText"])},
                     "dryRun": {"type": "boolean", "default": False,
                                "description": "Preview changes using git-style diff format"}}, ["path", "edits"]),
                fs.edit_file),
        ToolDef("create_directory",
                "Create a new directory or ensure a directory exists. Can create multiple nested directories in one "
                "operation. If the directory already exists, this operation will succeed silently. Perfect for "
                f"setting up directory structures for projects or ensuring required paths exist. {only}",
                obj({"path": STR}, ["path"]), fs.create_directory),
        ToolDef("list_directory",
                "Get a detailed listing of all files and directories in a specified path. Results clearly distinguish "
                "between files and directories with [FILE] and [DIR] prefixes. This tool is essential for "
                f"understanding directory structure and finding specific files within a directory. {only}",
                obj({"path": STR}, ["path"]), fs.list_directory),
        ToolDef("list_directory_with_sizes",
                "Get a detailed listing of all files and directories in a specified path, including sizes. Results "
                "clearly distinguish between files and directories with [FILE] and [DIR] prefixes. This tool is "
                f"useful for understanding directory structure and finding specific files within a directory. {only}",
                obj({"path": STR, "sortBy": {"type": "string", "enum": ["name", "size"], "default": "name",
                                             "description": "Sort entries by name or size"}}, ["path"]),
                fs.list_directory_with_sizes),
        ToolDef("directory_tree",
                "Get a recursive tree view of files and directories as a JSON structure. Each entry includes 'name', "
                "'type' (file/directory), and 'children' for directories. Files have no children array, while "
                "directories always have a children array (which may be empty). The output is formatted with "
                f"2-space indentation for readability. {only}",
                obj({"path": STR, "excludePatterns": _PATTERNS}, ["path"]), fs.directory_tree),
        ToolDef("move_file",
                "Move or rename files and directories. Can move files between directories and rename them in a "
                "single operation. If the destination exists, the operation will fail. Works across different "
                "directories and can be used for simple renaming within the same directory. Both source and "
                "destination must be within allowed directories.",
                obj({"source": STR, "destination": STR}, ["source", "destination"]), fs.move_file),
        ToolDef("search_files",
                "Recursively search for files and directories matching a pattern. The patterns should be glob-style "
                "patterns that match paths relative to the working directory. Use pattern like '*.ext' to match "
                "files in current directory, and '**/*.ext' to match files in all subdirectories. Returns full paths "
                "to all matching items. Great for finding files when you don't know their exact location. Only "
                "searches within allowed directories.",
                obj({"path": STR, "pattern": STR, "excludePatterns": _PATTERNS}, ["path", "pattern"]),
                fs.search_files),
        ToolDef("get_file_info",
                "Retrieve detailed metadata about a file or directory. Returns comprehensive information including "
                "size, creation time, last modified time, permissions, and type. This tool is perfect for "
                f"understanding file characteristics without reading the actual content. {only}",
                obj({"path": STR}, ["path"]), fs.get_file_info),
        ToolDef("list_allowed_directories",
                "Returns the list of directories that this server is allowed to access. Subdirectories within these "
                "allowed directories are also accessible. Use this to understand which directories and their nested "
                "paths are available before trying to access files.", obj(), fs.list_allowed_directories),
    ]


def main() -> None:
    root = VirtualRoot(os.environ["ALLOWED_DIR"], os.environ.get("MCP_VIRTUAL_ROOT", "/data"))
    fs = FileSystem(root)
    wrapped = [ToolDef(t.name, t.description, t.input_schema, _hiding(root, t.fn)) for t in tools(fs)]
    serve_stdio(build_server("secure-filesystem-server", "0.2.0", wrapped))


def _hiding(root: VirtualRoot, fn):
    """Outputs and error messages never show the real location of the root."""
    def call(args):
        try:
            out = fn(args)
        except OSError as e:
            where = f": '{root.to_virtual(e.filename)}'" if e.filename else ""
            raise ToolFailure(root.hide(f"{e.strerror}{where}" if e.strerror else str(e))) from None
        except Exception as e:  # noqa: BLE001
            raise ToolFailure(root.hide(str(e))) from None
        return root.hide(out) if isinstance(out, str) else out
    return call


if __name__ == "__main__":
    main()
