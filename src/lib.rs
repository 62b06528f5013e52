//! picaboot: the Picasoft install wiki as software.
//!
//! Declarative profiles (site, hardware, host, cluster) are loaded and checked
//! ([`profile`], [`project`]), turned into a storage plan ([`storage`]) and a corosync model
//! ([`cluster`]), and rendered through tera templates ([`render`]) into per-host trees that are
//! published atomically ([`output`]). External programs all go through [`exec`].

pub mod amt;
pub mod archive;
pub mod backup;
pub mod cleanup;
pub mod cli;
pub mod cluster;
pub mod date;
pub mod debian;
pub mod exec;
pub mod exit_class;
pub mod http;
pub mod image;
pub mod install;
pub mod limits;
pub mod mirror;
pub mod netboot;
pub mod ops;
pub mod output;
pub mod profile;
pub mod progress;
pub mod project;
pub mod qemu;
pub mod registry;
pub mod render;
pub mod secret;
pub mod serve;
pub mod services;
pub mod storage;
pub mod vm;
pub mod xml;
