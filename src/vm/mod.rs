//! The VMs on the cluster's nodes: whether they fit their node, the Proxmox side (`vm
//! create`: the `qm` sequence over SSH), and their system.

pub mod fit;
