"""The view layer: `Result`, the palette and every renderer (status, report card, performance, plots).

Submodules are imported where used, never here: `tito status` imports only what it renders."""
