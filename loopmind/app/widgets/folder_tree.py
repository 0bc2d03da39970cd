"""The watched folders as a tree; picking a folder narrows the browser to it."""

from __future__ import annotations

import os

from textual import work
from textual.binding import Binding
from textual.widgets import Tree
from textual.widgets.tree import TreeNode

from loopmind.app.messages import FolderChosen
from loopmind.app.workers import ForwardsWorkerErrors


def list_subfolders(path: str) -> list[str]:
    """Visible subfolders of ``path``, sorted by name (an unreadable folder has none)."""
    try:
        with os.scandir(path) as it:
            names = [e.path for e in it
                     if not e.name.startswith(".") and e.is_dir(follow_symlinks=False)]
    except OSError:
        return []
    return sorted(names, key=lambda p: os.path.basename(p).lower())


class FolderTree(ForwardsWorkerErrors, Tree[str]):
    """"Library" at the root, the watched folders under it; subfolders are listed (in a worker)
    when a folder is first opened. Enter or a click picks a folder, the root picks them all.

    Space is left to the app (play/stop), so the tree's own bindings are redefined."""

    BINDINGS = [
        Binding("enter", "select_cursor", "Pick folder", show=False),
        Binding("up", "cursor_up", "Up", show=False),
        Binding("down", "cursor_down", "Down", show=False),
        Binding("right", "expand", "Open", show=False),
        Binding("left", "collapse", "Close", show=False),
    ]
    inherit_bindings = False

    def __init__(self, **kwargs) -> None:
        super().__init__("Library", data=None, **kwargs)
        self.show_root = True
        self.guide_depth = 2
        self._listed: set[str] = set()

    def set_folders(self, folders: list[str]) -> None:
        """Show these watched folders (by name; the full path is the node's data)."""
        self.clear()
        self._listed.clear()
        for f in folders:
            node = self.root.add(os.path.basename(f.rstrip(os.sep)) or f, data=f,
                                 allow_expand=True)
            node.collapse()
        self.root.expand()

    def action_expand(self) -> None:
        node = self.cursor_node
        if node is not None and node.allow_expand:
            node.expand()

    def action_collapse(self) -> None:
        node = self.cursor_node
        if node is None:
            return
        if node.is_expanded and node is not self.root:
            node.collapse()
        elif node.parent is not None:
            self.move_cursor(node.parent)

    def on_tree_node_expanded(self, event: Tree.NodeExpanded[str]) -> None:
        node = event.node
        if node.data and node.data not in self._listed:
            self._listed.add(node.data)
            self._list_folder(node)

    def on_tree_node_selected(self, event: Tree.NodeSelected[str]) -> None:
        event.stop()
        self.post_message(FolderChosen(event.node.data))

    @work(thread=True, group="folder-tree", exit_on_error=False,
          description="listing a folder")
    def _list_folder(self, node: TreeNode[str]) -> None:
        subfolders = list_subfolders(node.data or "")
        self.app.call_from_thread(self._show_subfolders, node, subfolders)

    def _show_subfolders(self, node: TreeNode[str], subfolders: list[str]) -> None:
        if not subfolders:
            node.allow_expand = False
            return
        for p in subfolders:
            node.add(os.path.basename(p), data=p, allow_expand=True)
