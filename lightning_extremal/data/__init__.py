"""Where images, ground truth and classifiers come from: sources, VOC/COCO/synthetic sets, the
bundled demo."""
