"""Music streaming: browse artists, albums and tracks, manage playlists, play music, get recommendations."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from envfactory.env import Environment, ToolFailure

PlanId = Literal["free", "student", "premium"]


class Plan(BaseModel):
    plan_id: str
    name: str
    monthly_price: float
    max_playlists: int | None = None
    max_tracks_per_playlist: int | None = None
    max_collaborators: int = 0
    requires_student_verification: bool = False


class Artist(BaseModel):
    artist_id: str
    name: str
    country: str
    genre: str
    followers: int = 0


class Album(BaseModel):
    album_id: str
    title: str
    artist_id: str
    release_year: int


class Track(BaseModel):
    track_id: str
    title: str
    artist_id: str
    album_id: str
    track_number: int
    duration_seconds: int
    genre: str
    explicit: bool = False
    play_count: int = 0


class User(BaseModel):
    user_id: str
    name: str
    email: str
    country: str
    plan_id: PlanId
    explicit_filter: bool = False
    student_verified: bool = False
    followed_artist_ids: list[str] = Field(default_factory=list)


class Playlist(BaseModel):
    playlist_id: str
    name: str
    owner_id: str
    created_on: str
    track_ids: list[str] = Field(default_factory=list)
    collaborator_ids: list[str] = Field(default_factory=list)


class Listen(BaseModel):
    listen_id: str
    user_id: str
    track_id: str
    played_on: str
    seconds_played: int


class State(BaseModel):
    today: str
    plans: dict[str, Plan]
    artists: dict[str, Artist]
    albums: dict[str, Album]
    tracks: dict[str, Track]
    users: dict[str, User]
    playlists: dict[str, Playlist] = Field(default_factory=dict)
    listens: dict[str, Listen] = Field(default_factory=dict)
    next_playlist_number: int = 1
    next_listen_number: int = 1


# ---- tool outputs -----------------------------------------------------------

class TrackSummary(BaseModel):
    track_id: str
    title: str
    artist_id: str
    artist_name: str
    album_id: str
    genre: str
    duration_seconds: int
    explicit: bool


class TrackDetails(TrackSummary):
    album_title: str
    track_number: int
    release_year: int
    play_count: int


class ArtistSummary(BaseModel):
    artist_id: str
    name: str
    country: str
    genre: str
    followers: int


class AlbumSummary(BaseModel):
    album_id: str
    title: str
    release_year: int
    track_count: int


class ArtistDetails(ArtistSummary):
    albums: list[AlbumSummary]


class AlbumDetails(BaseModel):
    album_id: str
    title: str
    artist_id: str
    artist_name: str
    release_year: int
    tracks: list[TrackSummary]
    total_duration_seconds: int


class UserProfile(BaseModel):
    user_id: str
    name: str
    email: str
    country: str
    plan_id: str
    plan_name: str
    explicit_filter: bool
    followed_artist_ids: list[str]
    owned_playlists: int
    max_playlists: int | None
    max_tracks_per_playlist: int | None


class FollowResult(BaseModel):
    user_id: str
    artist_id: str
    following: bool
    artist_followers: int


class PlaylistTrack(BaseModel):
    position: int
    track_id: str
    title: str
    artist_name: str
    duration_seconds: int


class PlaylistView(BaseModel):
    playlist_id: str
    name: str
    owner_id: str
    created_on: str
    collaborator_ids: list[str]
    track_count: int
    total_duration_seconds: int
    tracks: list[PlaylistTrack]


class PlaylistSummary(BaseModel):
    playlist_id: str
    name: str
    owner_id: str
    role: Literal["owner", "collaborator"]
    track_count: int
    total_duration_seconds: int


class ListenEntry(BaseModel):
    listen_id: str
    track_id: str
    title: str
    artist_name: str
    genre: str
    played_on: str
    seconds_played: int


class PlayResult(BaseModel):
    listen_id: str
    user_id: str
    track_id: str
    played_on: str
    seconds_played: int
    completed: bool
    track_play_count: int


class Recommendations(BaseModel):
    user_id: str
    based_on_genre: str
    genre_listens: int
    tracks: list[TrackSummary]


class PlanChange(BaseModel):
    user_id: str
    old_plan_id: str
    new_plan_id: str
    monthly_price: float


class MusicStreaming(Environment):
    """A music streaming service: a catalog of artists, albums and tracks (with genres and
    durations), listeners on free, student or premium plans (the free plan caps the number
    and size of playlists and cannot share them), playlists that can be edited, reordered and
    shared with collaborators, a listening history, artist follows, and genre-based
    recommendations derived from what a listener plays most."""

    name = "music_streaming"
    domain = "entertainment"
    State = State

    # ---- helpers ------------------------------------------------------------
    def _user(self, user_id: str) -> dict:
        user = self.state["users"].get(user_id)
        if user is None:
            raise ToolFailure(f"user {user_id} not found")
        return user

    def _track(self, track_id: str) -> dict:
        track = self.state["tracks"].get(track_id)
        if track is None:
            raise ToolFailure(f"track {track_id} not found")
        return track

    def _artist(self, artist_id: str) -> dict:
        artist = self.state["artists"].get(artist_id)
        if artist is None:
            raise ToolFailure(f"artist {artist_id} not found")
        return artist

    def _playlist(self, playlist_id: str) -> dict:
        playlist = self.state["playlists"].get(playlist_id)
        if playlist is None:
            raise ToolFailure(f"playlist {playlist_id} not found")
        return playlist

    def _plan(self, user: dict) -> dict:
        return self.state["plans"][user["plan_id"]]

    def _summary(self, track: dict) -> dict:
        return {"track_id": track["track_id"], "title": track["title"], "artist_id": track["artist_id"],
                "artist_name": self.state["artists"][track["artist_id"]]["name"], "album_id": track["album_id"],
                "genre": track["genre"], "duration_seconds": track["duration_seconds"], "explicit": track["explicit"]}

    def _playlist_view(self, playlist: dict) -> dict:
        tracks = []
        for i, tid in enumerate(playlist["track_ids"], start=1):
            t = self.state["tracks"][tid]
            tracks.append({"position": i, "track_id": tid, "title": t["title"],
                           "artist_name": self.state["artists"][t["artist_id"]]["name"],
                           "duration_seconds": t["duration_seconds"]})
        return {"playlist_id": playlist["playlist_id"], "name": playlist["name"], "owner_id": playlist["owner_id"],
                "created_on": playlist["created_on"], "collaborator_ids": list(playlist["collaborator_ids"]),
                "track_count": len(tracks), "total_duration_seconds": sum(t["duration_seconds"] for t in tracks),
                "tracks": tracks}

    def _editable_playlist(self, user_id: str, playlist_id: str) -> dict:
        self._user(user_id)
        playlist = self._playlist(playlist_id)
        if user_id != playlist["owner_id"] and user_id not in playlist["collaborator_ids"]:
            raise ToolFailure(f"user {user_id} is neither the owner nor a collaborator of playlist {playlist_id}")
        return playlist

    def _owned(self, user_id: str) -> list[dict]:
        return [p for p in self.state["playlists"].values() if p["owner_id"] == user_id]

    # ---- catalog --------------------------------------------------------------
    def search_tracks(self, query: str | None = None, genre: str | None = None, artist_id: str | None = None,
                      max_duration_seconds: int | None = None, limit: int = 10) -> list[TrackSummary]:
        """Search the catalog for tracks, most played first. All given filters must match.

        Args:
            query: Text contained in the track title or the artist name (case-insensitive).
            genre: Exact genre, e.g. "jazz" (case-insensitive).
            artist_id: Only tracks by this artist, e.g. "ART-004".
            max_duration_seconds: Only tracks at most this long, in seconds.
            limit: Maximum number of results (1-50).
        """
        if not 1 <= limit <= 50:
            raise ToolFailure("limit must be between 1 and 50")
        if genre is not None:
            genres = sorted({t["genre"] for t in self.state["tracks"].values()})
            if genre.lower() not in genres:
                raise ToolFailure(f"unknown genre {genre!r}; known genres: {', '.join(genres)}")
        if artist_id is not None:
            self._artist(artist_id)
        if max_duration_seconds is not None and max_duration_seconds <= 0:
            raise ToolFailure("max_duration_seconds must be positive")
        q = query.strip().lower() if query else None
        found = []
        for t in self.state["tracks"].values():
            artist_name = self.state["artists"][t["artist_id"]]["name"]
            if q and q not in t["title"].lower() and q not in artist_name.lower():
                continue
            if genre is not None and t["genre"] != genre.lower():
                continue
            if artist_id is not None and t["artist_id"] != artist_id:
                continue
            if max_duration_seconds is not None and t["duration_seconds"] > max_duration_seconds:
                continue
            found.append(t)
        found.sort(key=lambda t: (-t["play_count"], t["track_id"]))
        return [self._summary(t) for t in found[:limit]]

    def get_track(self, track_id: str) -> TrackDetails:
        """Full details of a track: album, track number, release year and total play count.

        Args:
            track_id: Track identifier, e.g. "TRK-0012".
        """
        t = self._track(track_id)
        album = self.state["albums"][t["album_id"]]
        return {**self._summary(t), "album_title": album["title"], "track_number": t["track_number"],
                "release_year": album["release_year"], "play_count": t["play_count"]}

    def search_artists(self, name: str) -> list[ArtistSummary]:
        """Find artists whose name contains the given text, most followed first.

        Args:
            name: Part of the artist name (case-insensitive), at least 2 characters.
        """
        q = name.strip().lower()
        if len(q) < 2:
            raise ToolFailure("name must contain at least 2 characters")
        found = [a for a in self.state["artists"].values() if q in a["name"].lower()]
        found.sort(key=lambda a: (-a["followers"], a["artist_id"]))
        return [{k: a[k] for k in ("artist_id", "name", "country", "genre", "followers")} for a in found]

    def get_artist(self, artist_id: str) -> ArtistDetails:
        """An artist's profile with their albums, oldest first.

        Args:
            artist_id: Artist identifier, e.g. "ART-004".
        """
        a = self._artist(artist_id)
        albums = []
        for al in self.state["albums"].values():
            if al["artist_id"] != artist_id:
                continue
            count = sum(1 for t in self.state["tracks"].values() if t["album_id"] == al["album_id"])
            albums.append({"album_id": al["album_id"], "title": al["title"], "release_year": al["release_year"],
                           "track_count": count})
        albums.sort(key=lambda x: (x["release_year"], x["album_id"]))
        return {"artist_id": a["artist_id"], "name": a["name"], "country": a["country"], "genre": a["genre"],
                "followers": a["followers"], "albums": albums}

    def get_album(self, album_id: str) -> AlbumDetails:
        """An album with its track listing in order and its total running time.

        Args:
            album_id: Album identifier, e.g. "ALB-007".
        """
        al = self.state["albums"].get(album_id)
        if al is None:
            raise ToolFailure(f"album {album_id} not found")
        tracks = sorted((t for t in self.state["tracks"].values() if t["album_id"] == album_id),
                        key=lambda t: (t["track_number"], t["track_id"]))
        return {"album_id": album_id, "title": al["title"], "artist_id": al["artist_id"],
                "artist_name": self.state["artists"][al["artist_id"]]["name"], "release_year": al["release_year"],
                "tracks": [self._summary(t) for t in tracks],
                "total_duration_seconds": sum(t["duration_seconds"] for t in tracks)}

    # ---- users ----------------------------------------------------------------
    def find_user(self, email: str) -> UserProfile:
        """Look up a listener by email: plan, limits, followed artists and number of owned playlists.

        Args:
            email: The listener's email address (case-insensitive).
        """
        for u in self.state["users"].values():
            if u["email"].lower() == email.strip().lower():
                plan = self._plan(u)
                return {"user_id": u["user_id"], "name": u["name"], "email": u["email"], "country": u["country"],
                        "plan_id": u["plan_id"], "plan_name": plan["name"], "explicit_filter": u["explicit_filter"],
                        "followed_artist_ids": list(u["followed_artist_ids"]),
                        "owned_playlists": len(self._owned(u["user_id"])),
                        "max_playlists": plan["max_playlists"],
                        "max_tracks_per_playlist": plan["max_tracks_per_playlist"]}
        raise ToolFailure(f"no user registered with email {email}")

    def follow_artist(self, user_id: str, artist_id: str) -> FollowResult:
        """Make a listener follow an artist.

        Args:
            user_id: Listener identifier, e.g. "U-0003".
            artist_id: Artist identifier.
        """
        user = self._user(user_id)
        artist = self._artist(artist_id)
        if artist_id in user["followed_artist_ids"]:
            raise ToolFailure(f"user {user_id} already follows artist {artist_id}")
        user["followed_artist_ids"].append(artist_id)
        artist["followers"] += 1
        return {"user_id": user_id, "artist_id": artist_id, "following": True, "artist_followers": artist["followers"]}

    def unfollow_artist(self, user_id: str, artist_id: str) -> FollowResult:
        """Make a listener stop following an artist.

        Args:
            user_id: Listener identifier.
            artist_id: Artist identifier the listener currently follows.
        """
        user = self._user(user_id)
        artist = self._artist(artist_id)
        if artist_id not in user["followed_artist_ids"]:
            raise ToolFailure(f"user {user_id} does not follow artist {artist_id}")
        user["followed_artist_ids"].remove(artist_id)
        artist["followers"] = max(0, artist["followers"] - 1)
        return {"user_id": user_id, "artist_id": artist_id, "following": False,
                "artist_followers": artist["followers"]}

    def change_plan(self, user_id: str, plan_id: PlanId) -> PlanChange:
        """Switch a listener's subscription plan. The student plan needs a verified student;
        moving to a plan with lower limits is refused while the listener's playlists exceed them
        (too many playlists, too many tracks in one, or collaborators the plan does not allow).

        Args:
            user_id: Listener identifier.
            plan_id: Target plan: free, student or premium.
        """
        user = self._user(user_id)
        if user["plan_id"] == plan_id:
            raise ToolFailure(f"user {user_id} is already on the {plan_id} plan")
        plan = self.state["plans"][plan_id]
        if plan["requires_student_verification"] and not user["student_verified"]:
            raise ToolFailure(f"the {plan_id} plan requires a verified student account")
        owned = self._owned(user_id)
        if plan["max_playlists"] is not None and len(owned) > plan["max_playlists"]:
            raise ToolFailure(f"user {user_id} owns {len(owned)} playlists; the {plan_id} plan allows "
                              f"{plan['max_playlists']}")
        for p in owned:
            if plan["max_tracks_per_playlist"] is not None and len(p["track_ids"]) > plan["max_tracks_per_playlist"]:
                raise ToolFailure(f"playlist {p['playlist_id']} has {len(p['track_ids'])} tracks; the {plan_id} "
                                  f"plan allows {plan['max_tracks_per_playlist']} per playlist")
            if len(p["collaborator_ids"]) > plan["max_collaborators"]:
                raise ToolFailure(f"playlist {p['playlist_id']} has {len(p['collaborator_ids'])} collaborators; the "
                                  f"{plan_id} plan allows {plan['max_collaborators']}")
        old = user["plan_id"]
        user["plan_id"] = plan_id
        return {"user_id": user_id, "old_plan_id": old, "new_plan_id": plan_id,
                "monthly_price": plan["monthly_price"]}

    # ---- playlists ------------------------------------------------------------
    def list_user_playlists(self, user_id: str) -> list[PlaylistSummary]:
        """Playlists a listener owns or collaborates on, by playlist id.

        Args:
            user_id: Listener identifier.
        """
        self._user(user_id)
        out = []
        for p in self.state["playlists"].values():
            if p["owner_id"] == user_id:
                role = "owner"
            elif user_id in p["collaborator_ids"]:
                role = "collaborator"
            else:
                continue
            out.append({"playlist_id": p["playlist_id"], "name": p["name"], "owner_id": p["owner_id"], "role": role,
                        "track_count": len(p["track_ids"]),
                        "total_duration_seconds": sum(self.state["tracks"][t]["duration_seconds"]
                                                      for t in p["track_ids"])})
        return sorted(out, key=lambda x: x["playlist_id"])

    def get_playlist(self, playlist_id: str) -> PlaylistView:
        """A playlist with its tracks in order (positions start at 1) and its total duration.

        Args:
            playlist_id: Playlist identifier, e.g. "PL-0004".
        """
        return self._playlist_view(self._playlist(playlist_id))

    def create_playlist(self, user_id: str, name: str) -> PlaylistView:
        """Create an empty playlist owned by a listener. The plan may cap how many playlists
        a listener owns; names must be unique among the listener's own playlists.

        Args:
            user_id: Listener identifier (becomes the owner).
            name: Playlist name, 1-60 characters.
        """
        user = self._user(user_id)
        clean = name.strip()
        if not 1 <= len(clean) <= 60:
            raise ToolFailure("playlist name must be 1-60 characters")
        owned = self._owned(user_id)
        if any(p["name"].lower() == clean.lower() for p in owned):
            raise ToolFailure(f"user {user_id} already has a playlist named {clean!r}")
        plan = self._plan(user)
        if plan["max_playlists"] is not None and len(owned) >= plan["max_playlists"]:
            raise ToolFailure(f"the {plan['name']} plan allows at most {plan['max_playlists']} playlists "
                              f"and user {user_id} already owns {len(owned)}")
        pid = f"PL-{self.state['next_playlist_number']:04d}"
        self.state["next_playlist_number"] += 1
        playlist = {"playlist_id": pid, "name": clean, "owner_id": user_id, "created_on": self.state["today"],
                    "track_ids": [], "collaborator_ids": []}
        self.state["playlists"][pid] = playlist
        return self._playlist_view(playlist)

    def add_track_to_playlist(self, user_id: str, playlist_id: str, track_id: str,
                              position: int | None = None) -> PlaylistView:
        """Add a track to a playlist the listener owns or collaborates on. A track can appear
        only once per playlist, and the owner's plan may cap the number of tracks.

        Args:
            user_id: Listener making the change (owner or collaborator).
            playlist_id: Playlist identifier.
            track_id: Track to add.
            position: 1-based position to insert at; omit to append at the end.
        """
        playlist = self._editable_playlist(user_id, playlist_id)
        self._track(track_id)
        if track_id in playlist["track_ids"]:
            raise ToolFailure(f"track {track_id} is already in playlist {playlist_id}")
        owner_plan = self._plan(self.state["users"][playlist["owner_id"]])
        cap = owner_plan["max_tracks_per_playlist"]
        if cap is not None and len(playlist["track_ids"]) >= cap:
            raise ToolFailure(f"playlist {playlist_id} is full: the owner's {owner_plan['name']} plan allows "
                              f"{cap} tracks per playlist")
        size = len(playlist["track_ids"])
        if position is None:
            playlist["track_ids"].append(track_id)
        else:
            if not 1 <= position <= size + 1:
                raise ToolFailure(f"position must be between 1 and {size + 1}")
            playlist["track_ids"].insert(position - 1, track_id)
        return self._playlist_view(playlist)

    def remove_track_from_playlist(self, user_id: str, playlist_id: str, track_id: str) -> PlaylistView:
        """Remove a track from a playlist the listener owns or collaborates on.

        Args:
            user_id: Listener making the change (owner or collaborator).
            playlist_id: Playlist identifier.
            track_id: Track currently in the playlist.
        """
        playlist = self._editable_playlist(user_id, playlist_id)
        if track_id not in playlist["track_ids"]:
            raise ToolFailure(f"track {track_id} is not in playlist {playlist_id}")
        playlist["track_ids"].remove(track_id)
        return self._playlist_view(playlist)

    def move_playlist_track(self, user_id: str, playlist_id: str, track_id: str, new_position: int) -> PlaylistView:
        """Reorder a playlist by moving one of its tracks to a new 1-based position.

        Args:
            user_id: Listener making the change (owner or collaborator).
            playlist_id: Playlist identifier.
            track_id: Track currently in the playlist.
            new_position: Target position, between 1 and the playlist's track count.
        """
        playlist = self._editable_playlist(user_id, playlist_id)
        ids = playlist["track_ids"]
        if track_id not in ids:
            raise ToolFailure(f"track {track_id} is not in playlist {playlist_id}")
        if not 1 <= new_position <= len(ids):
            raise ToolFailure(f"new_position must be between 1 and {len(ids)}")
        if ids.index(track_id) == new_position - 1:
            raise ToolFailure(f"track {track_id} is already at position {new_position}")
        ids.remove(track_id)
        ids.insert(new_position - 1, track_id)
        return self._playlist_view(playlist)

    def share_playlist(self, user_id: str, playlist_id: str, collaborator_id: str) -> PlaylistView:
        """Let another listener edit a playlist (collaborative sharing). Only the owner can share,
        and the owner's plan limits the number of collaborators (the free plan allows none).

        Args:
            user_id: The playlist owner.
            playlist_id: Playlist identifier.
            collaborator_id: Listener (user id) who becomes a collaborator.
        """
        self._user(user_id)
        playlist = self._playlist(playlist_id)
        if playlist["owner_id"] != user_id:
            raise ToolFailure(f"only the owner ({playlist['owner_id']}) can share playlist {playlist_id}")
        self._user(collaborator_id)
        if collaborator_id == user_id:
            raise ToolFailure("the owner cannot be added as a collaborator")
        if collaborator_id in playlist["collaborator_ids"]:
            raise ToolFailure(f"user {collaborator_id} already collaborates on playlist {playlist_id}")
        plan = self._plan(self.state["users"][user_id])
        if len(playlist["collaborator_ids"]) >= plan["max_collaborators"]:
            if plan["max_collaborators"] == 0:
                raise ToolFailure(f"the {plan['name']} plan does not allow collaborative playlists")
            raise ToolFailure(f"the {plan['name']} plan allows at most {plan['max_collaborators']} "
                              f"collaborators per playlist")
        playlist["collaborator_ids"].append(collaborator_id)
        return self._playlist_view(playlist)

    # ---- listening ------------------------------------------------------------
    def play_track(self, user_id: str, track_id: str, seconds_played: int | None = None) -> PlayResult:
        """Record that a listener played a track today (adds to the listening history and the
        track's play count). Explicit tracks are blocked for listeners with the explicit filter on.

        Args:
            user_id: Listener identifier.
            track_id: Track that was played.
            seconds_played: How long it was played (1 to the track duration); omit for the full track.
        """
        user = self._user(user_id)
        track = self._track(track_id)
        if track["explicit"] and user["explicit_filter"]:
            raise ToolFailure(f"track {track_id} is explicit and user {user_id} has the explicit filter on")
        secs = track["duration_seconds"] if seconds_played is None else seconds_played
        if not 1 <= secs <= track["duration_seconds"]:
            raise ToolFailure(f"seconds_played must be between 1 and {track['duration_seconds']}")
        lid = f"LSN-{self.state['next_listen_number']:05d}"
        self.state["next_listen_number"] += 1
        self.state["listens"][lid] = {"listen_id": lid, "user_id": user_id, "track_id": track_id,
                                      "played_on": self.state["today"], "seconds_played": secs}
        track["play_count"] += 1
        return {"listen_id": lid, "user_id": user_id, "track_id": track_id, "played_on": self.state["today"],
                "seconds_played": secs, "completed": secs == track["duration_seconds"],
                "track_play_count": track["play_count"]}

    def get_listening_history(self, user_id: str, limit: int = 10) -> list[ListenEntry]:
        """A listener's most recent plays, newest first.

        Args:
            user_id: Listener identifier.
            limit: Maximum number of entries (1-100).
        """
        self._user(user_id)
        if not 1 <= limit <= 100:
            raise ToolFailure("limit must be between 1 and 100")
        mine = [l for l in self.state["listens"].values() if l["user_id"] == user_id]
        mine.sort(key=lambda l: (l["played_on"], l["listen_id"]), reverse=True)
        out = []
        for l in mine[:limit]:
            t = self.state["tracks"][l["track_id"]]
            out.append({"listen_id": l["listen_id"], "track_id": t["track_id"], "title": t["title"],
                        "artist_name": self.state["artists"][t["artist_id"]]["name"], "genre": t["genre"],
                        "played_on": l["played_on"], "seconds_played": l["seconds_played"]})
        return out

    def recommend_tracks(self, user_id: str, limit: int = 5) -> Recommendations:
        """Recommend tracks from the listener's most-played genre (most listens; ties go to the
        alphabetically first genre) that the listener has never played. Tracks by followed
        artists come first, then the most played; explicit tracks are skipped when the
        listener's explicit filter is on.

        Args:
            user_id: Listener identifier; needs at least one play in the history.
            limit: Maximum number of tracks (1-20).
        """
        user = self._user(user_id)
        if not 1 <= limit <= 20:
            raise ToolFailure("limit must be between 1 and 20")
        counts: dict[str, int] = {}
        heard: set[str] = set()
        for l in self.state["listens"].values():
            if l["user_id"] == user_id:
                heard.add(l["track_id"])
                g = self.state["tracks"][l["track_id"]]["genre"]
                counts[g] = counts.get(g, 0) + 1
        if not counts:
            raise ToolFailure(f"user {user_id} has no listening history yet; play some tracks first")
        genre = min(counts, key=lambda g: (-counts[g], g))
        followed = set(user["followed_artist_ids"])
        cands = [t for t in self.state["tracks"].values()
                 if t["genre"] == genre and t["track_id"] not in heard
                 and not (t["explicit"] and user["explicit_filter"])]
        cands.sort(key=lambda t: (t["artist_id"] not in followed, -t["play_count"], t["track_id"]))
        return {"user_id": user_id, "based_on_genre": genre, "genre_listens": counts[genre],
                "tracks": [self._summary(t) for t in cands[:limit]]}
