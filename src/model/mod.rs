//! Models: the bias-free VGG-16 and the student-teacher networks.

mod init;
mod mlp;
mod vgg;

pub use init::standard_normal;
pub use mlp::BiasFreeMlp;
pub use vgg::{ConvLayerShape, NUM_CLASSES, Vgg, conv_layer_shapes};
