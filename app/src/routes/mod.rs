//! The pages, one module each.

pub mod cluster;
pub mod clusters;
pub mod gpus;
pub mod history;
pub mod launch;
pub mod logs;
pub mod overview;
pub mod rayjobs;
pub mod submit;
