"""facebench model plugins: VGG16, DINOv2 and CLIP."""
