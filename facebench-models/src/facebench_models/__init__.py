"""facebench model plugins: the torchvision, timm and Hugging Face families, the IResNet and
FaceNet face backbones, and the VGG16, DINOv2 and CLIP presets."""
