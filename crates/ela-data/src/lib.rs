//! The data of ELA's training runs: readers, fetchers, archive preparation, transforms and the
//! dataset and batcher types the loaders use.
//!
//! It owns everything between files on disk (or the network) and a batch of image tensors:
//! - [`dataset`]: the MNIST IDX reader and the embedded MNIST sample, in-memory image sets,
//!   per-epoch shuffling driven by an epoch clock, normalization and the image batcher;
//! - [`cifar`]: the CIFAR-10/100 binary reader and the pad-and-crop / flip augmentation;
//! - [`coco`]: COCO instances files (boxes, crowd, area, polygons, RLE) and detection samples;
//! - [`imagenet`]: the ImageNet image-folder dataset with JPEG decoding and its transforms;
//! - [`ilsvrc`]: ImageNet-1K prepared from the official ILSVRC2012 archives, with [`mat`], a
//!   MATLAB level-5 reader for the devkit's `meta.mat`;
//! - [`detection`]: the detection input pipeline (resize to fit, flip, normalize, pad, batch),
//!   MMDetection's or torchvision's, with [`interpolate`], PyTorch's bilinear resize;
//! - [`masks`]: binary instance masks (rasterized segmentations, resize, flip, COCO RLE);
//! - [`digits`]: the offline detection set (MNIST digits on canvases, COCO format);
//! - [`fetch`]: resumable, checksummed downloads of the official dataset archives, installed
//!   only when whole.
//!
//! It knows nothing of models, autodiff, optimizers, training or pruning: nothing here depends on
//! them, so the training, benchmark and detection crates can all read data through it.

pub mod cifar;
pub mod coco;
pub mod dataset;
pub mod detection;
pub mod digits;
pub mod fetch;
pub mod ilsvrc;
pub mod imagenet;
pub mod interpolate;
pub mod masks;
pub mod mat;
