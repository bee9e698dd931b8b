# A diffusers AutoencoderTiny with random weights and small channels, saved to argv[1], for convert's tinyVae tests.
# argv[2]: its latent channels (4, as SD 1.5 and SDXL; 16 makes one that fits neither); argv[3]: its blocks, the
# image being 2^(blocks - 1) times the latents (2 blocks, as the tiny fixtures' VAEs; TAESD has 4).
import sys

import torch
from diffusers import AutoencoderTiny

torch.manual_seed(5)
channels = int(sys.argv[2]) if len(sys.argv) > 2 else 4
blocks = int(sys.argv[3]) if len(sys.argv) > 3 else 2
vae = AutoencoderTiny(
    latent_channels=channels,
    encoder_block_out_channels=(8,) * blocks,
    decoder_block_out_channels=(8,) * blocks,
    num_encoder_blocks=(1,) * blocks,
    num_decoder_blocks=(1,) * blocks,
)
vae.save_pretrained(sys.argv[1], safe_serialization=True)
print('{"saved": true}')
