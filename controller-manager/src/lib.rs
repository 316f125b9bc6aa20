//! Ferry's controller-manager. Not built yet: this crate is an empty placeholder in the workspace so that the
//! layout is fixed from the start; it offers nothing and claims nothing (see ARCHITECTURE.md).
