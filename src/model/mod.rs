//! Models: the bias-free VGG-16 and the student-teacher networks.

mod mlp;
mod vgg;

pub use mlp::BiasFreeMlp;
pub use vgg::{NUM_CLASSES, Vgg};
