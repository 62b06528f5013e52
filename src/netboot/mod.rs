//! netboot (in progress)
