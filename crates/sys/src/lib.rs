//! placeholder
pub mod netns;
pub mod sysctl;
