"""The tiny model zoo: real diffusers / transformers / segment-anything / torch-fidelity
models with small seeded configs, saved in their libraries' own formats, so that
``handdiff.models.loading`` reads them exactly as it reads real checkpoints.

    <zoo>/sd15/                    StableDiffusionPipeline (unet, vae, text_encoder, tokenizer, scheduler)
    <zoo>/controlnet-openpose/     ControlNetModel matching that UNet
    <zoo>/t2i-adapter-openpose/    T2IAdapter matching that UNet
    <zoo>/humansd/                 HumanSD-shaped pipeline: SD 2.1-style UNet with 8 input channels
    <zoo>/handrefiner-controlnet/  HandRefiner-style depth ControlNet for hand inpainting
    <zoo>/sd15-inpainting/         StableDiffusionInpaintPipeline: the SD 1.5 parts with a 9-channel inpainting UNet
    <zoo>/sam/sam_tiny.pth         segment-anything checkpoint, architecture "tiny"
    <zoo>/llava/                   LlavaForConditionalGeneration + LlavaProcessor
    <zoo>/clip/                    CLIPModel + CLIPProcessor
    <zoo>/inception/pt_inception-2015-12-05-6726825d.pth   torch-fidelity FID Inception-v3 weights
    <zoo>/zoo.json                 what was built, by which code, how long it took

Random weights make meaningless pictures: the zoo exercises code paths, shapes,
dtypes and throughput, never quality. Tokenizers are byte-level with no merges
(one token per character), written by the project.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import torch

from handdiff import storage

ZOO_VERSION = 1
SD_DIR, CONTROLNET_DIR, SAM_FILE, LLAVA_DIR, CLIP_DIR = "sd15", "controlnet-openpose", "sam/sam_tiny.pth", "llava", "clip"
T2I_ADAPTER_DIR, HUMANSD_DIR, HANDREFINER_DIR, INPAINTING_DIR = (
    "t2i-adapter-openpose",
    "humansd",
    "handrefiner-controlnet",
    "sd15-inpainting",
)
INCEPTION_FILE = "inception/pt_inception-2015-12-05-6726825d.pth"
SAM_ARCH = "tiny"
ZOO_LAYOUT = {
    "sd15": SD_DIR,
    "controlnet": CONTROLNET_DIR,
    "sam": SAM_FILE,
    "captioner": LLAVA_DIR,
    "clip": CLIP_DIR,
    "inception": INCEPTION_FILE,
    "t2i_adapter": T2I_ADAPTER_DIR,
    "humansd": HUMANSD_DIR,
    "handrefiner": HANDREFINER_DIR,
    "inpainting": INPAINTING_DIR,
}
IMAGE_SIZE = 64
"""Generation size the tiny SD models are meant for (any multiple of 32 works)."""

LLAVA_CHAT_TEMPLATE = (
    "{% for message in messages %}{% if message['role'] == 'user' %}USER: "
    "{% for item in message['content'] %}{% if item['type'] == 'image' %}<image>\n{% else %}{{ item['text'] }}{% endif %}{% endfor %}"
    " {% else %}ASSISTANT: {% for item in message['content'] %}{{ item['text'] }}{% endfor %}</s>{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}ASSISTANT:{% endif %}"
)
"""The conversation format of llava-hf/llava-1.5-7b-hf ("USER: <image>\\n... ASSISTANT:")."""


def code_hash() -> str:
    """Changes whenever the zoo's code or the model libraries change: the cache key."""
    import diffusers
    import segment_anything
    import transformers

    from handdiff.models import sam

    h = hashlib.sha256()
    for module in (__file__, sam.__file__):
        h.update(Path(module).read_bytes())
    h.update(f"{ZOO_VERSION} {diffusers.__version__} {transformers.__version__} {segment_anything.__name__} {torch.__version__}".encode())
    return h.hexdigest()[:16]


def _byte_level_alphabet() -> list[str]:
    from tokenizers import pre_tokenizers

    return sorted(pre_tokenizers.ByteLevel.alphabet())


def clip_tokenizer():
    """A CLIP tokenizer (SD 1.5's kind): 256 byte symbols, each also as end-of-word, and CLIP's specials."""
    from transformers import CLIPTokenizer

    chars = _byte_level_alphabet()
    vocab = {c: i for i, c in enumerate(chars)}
    vocab.update({f"{c}</w>": len(chars) + i for i, c in enumerate(chars)})
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    return CLIPTokenizer(vocab=vocab, merges=[], model_max_length=77)


def _clip_text_config(tokenizer, **overrides):
    from transformers import CLIPTextConfig

    settings = {
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "projection_dim": 32,
        **overrides,
    }
    return CLIPTextConfig(
        vocab_size=len(tokenizer),
        max_position_embeddings=77,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        **settings,
    )


def build_sd(out: Path):
    """SD-1.5-shaped pipeline: 3-level UNet (cross-attention), 4-block VAE (factor 8), CLIP text encoder, DDIM."""
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextModel

    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        sample_size=IMAGE_SIZE // 8,
        in_channels=4,
        out_channels=4,
        layers_per_block=1,
        block_out_channels=(32, 32, 64),
        down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=32,
        attention_head_dim=8,
        norm_num_groups=16,
    )
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        latent_channels=4,
        layers_per_block=1,
        norm_num_groups=16,
        block_out_channels=(16, 32, 32, 32),
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        sample_size=IMAGE_SIZE,
    )
    tokenizer = clip_tokenizer()
    text_encoder = CLIPTextModel(_clip_text_config(tokenizer))
    scheduler = DDIMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        clip_sample=False,
        set_alpha_to_one=False,
        steps_offset=1,
        num_train_timesteps=1000,
    )
    pipe = StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.save_pretrained(out / SD_DIR)
    return unet


def build_controlnet(out: Path, unet) -> None:
    """An OpenPose-style ControlNet (3-channel skeleton image) made from the UNet, as ControlNet training starts."""
    from diffusers import ControlNetModel

    torch.manual_seed(1)
    controlnet = ControlNetModel.from_unet(unet, conditioning_embedding_out_channels=(8, 16, 32, 32))
    controlnet.save_pretrained(out / CONTROLNET_DIR)


def build_t2i_adapter(out: Path, unet) -> None:
    """An OpenPose-style T2I-Adapter matching the UNet (its channels, the VAE's downscale)."""
    from diffusers import T2IAdapter

    torch.manual_seed(3)
    T2IAdapter(
        in_channels=3, channels=list(unet.config.block_out_channels), num_res_blocks=1, downscale_factor=8, adapter_type="full_adapter"
    ).save_pretrained(out / T2I_ADAPTER_DIR)


def build_humansd(out: Path) -> None:
    """HumanSD's design, tiny: an SD 2.1-shaped pipeline (linear attention projections, a wider
    text encoder as OpenCLIP's stand-in) whose UNet takes 8 channels, the noisy latents and the
    VAE latents of the skeleton image."""
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextModel

    torch.manual_seed(4)
    tokenizer = clip_tokenizer()
    text_encoder = CLIPTextModel(_clip_text_config(tokenizer, hidden_size=48, projection_dim=48, num_attention_heads=4))
    unet = UNet2DConditionModel(
        sample_size=IMAGE_SIZE // 8,
        in_channels=8,
        out_channels=4,
        layers_per_block=1,
        block_out_channels=(32, 32, 64),
        down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=48,
        attention_head_dim=(2, 4, 8),
        use_linear_projection=True,
        norm_num_groups=16,
    )
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        latent_channels=4,
        layers_per_block=1,
        norm_num_groups=16,
        block_out_channels=(16, 32, 32, 32),
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        sample_size=IMAGE_SIZE,
    )
    scheduler = DDIMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        clip_sample=False,
        set_alpha_to_one=False,
        steps_offset=1,
        num_train_timesteps=1000,
    )
    StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    ).save_pretrained(out / HUMANSD_DIR)


def build_handrefiner_controlnet(out: Path, unet) -> None:
    """HandRefiner's depth-conditioned inpainting ControlNet (``control_sd15_inpaint_depth_hand``), tiny: from the UNet."""
    from diffusers import ControlNetModel

    torch.manual_seed(5)
    ControlNetModel.from_unet(unet, conditioning_embedding_out_channels=(8, 16, 32, 32)).save_pretrained(out / HANDREFINER_DIR)


def build_sd_inpainting(out: Path, unet) -> None:
    """SD 1.5's inpainting pipeline, tiny: the zoo's SD parts with a UNet of the same shape whose
    ``conv_in`` takes 9 channels (noisy latents, mask, masked-image latents), as
    ``stable-diffusion-inpainting``'s, the UNet HandRefiner's ControlNet steers."""
    from diffusers import StableDiffusionInpaintPipeline, StableDiffusionPipeline, UNet2DConditionModel

    torch.manual_seed(6)
    sd = StableDiffusionPipeline.from_pretrained(out / SD_DIR, safety_checker=None, requires_safety_checker=False)
    inpainting = UNet2DConditionModel.from_config({**unet.config, "in_channels": 9})
    StableDiffusionInpaintPipeline(
        vae=sd.vae,
        text_encoder=sd.text_encoder,
        tokenizer=sd.tokenizer,
        unet=inpainting,
        scheduler=sd.scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    ).save_pretrained(out / INPAINTING_DIR)


def build_sam_checkpoint(out: Path) -> None:
    from handdiff.models.sam import build_sam

    torch.manual_seed(2)
    path = out / SAM_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(build_sam(SAM_ARCH).state_dict(), path)


def build_llava(out: Path) -> None:
    """LLaVA-1.5-shaped captioner: CLIP vision tower (patch 14) + projector + Llama, byte-level tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import (
        CLIPImageProcessor,
        CLIPVisionConfig,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
        PreTrainedTokenizerFast,
    )

    vocab = {c: i for i, c in enumerate(_byte_level_alphabet())}
    for special in ("<unk>", "<s>", "</s>", "<pad>", "<image>"):
        vocab[special] = len(vocab)
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        pad_token="<pad>",
        extra_special_tokens={"image_token": "<image>"},
        model_max_length=512,
        padding_side="left",
    )
    image_size, patch = 56, 14
    processor = LlavaProcessor(
        image_processor=CLIPImageProcessor(size={"shortest_edge": image_size}, crop_size={"height": image_size, "width": image_size}),
        tokenizer=tokenizer,
        patch_size=patch,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,
        chat_template=LLAVA_CHAT_TEMPLATE,
    )
    config = LlavaConfig(
        vision_config=CLIPVisionConfig(
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            image_size=image_size,
            patch_size=patch,
            projection_dim=32,
        ),
        text_config=LlamaConfig(
            vocab_size=len(vocab),
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=4,
            max_position_embeddings=512,
            bos_token_id=vocab["<s>"],
            eos_token_id=vocab["</s>"],
            pad_token_id=vocab["<pad>"],
        ),
        image_token_index=vocab["<image>"],
        vision_feature_layer=-2,
        vision_feature_select_strategy="default",
    )
    torch.manual_seed(3)
    model = LlavaForConditionalGeneration(config)
    model.generation_config.pad_token_id = vocab["<pad>"]
    model.save_pretrained(out / LLAVA_DIR)
    processor.save_pretrained(out / LLAVA_DIR)


def build_clip(out: Path) -> None:
    """CLIP for CLIP scores: tiny text and vision towers, the SD tokenizer."""
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor, CLIPVisionConfig

    tokenizer = clip_tokenizer()
    config = CLIPConfig(
        text_config=_clip_text_config(tokenizer).to_dict(),
        vision_config=CLIPVisionConfig(
            hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4, image_size=32, patch_size=8, projection_dim=32
        ).to_dict(),
        projection_dim=32,
    )
    torch.manual_seed(4)
    CLIPModel(config).save_pretrained(out / CLIP_DIR)
    processor = CLIPProcessor(
        image_processor=CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}), tokenizer=tokenizer
    )
    processor.save_pretrained(out / CLIP_DIR)


def build_inception(out: Path) -> None:
    """torch-fidelity's FID Inception-v3 with random weights (fp16 on disk: half the size; loading casts)."""
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    class _Untrained(FeatureExtractorInceptionV3):
        def load_state_dict(self, state_dict, strict=True, assign=False):  # keep the random init
            return None

    torch.manual_seed(5)
    with tempfile.TemporaryDirectory() as tmp:
        empty = os.path.join(tmp, "empty.pth")
        torch.save({}, empty)
        model = _Untrained("inception-v3-compat", ["192"], feature_extractor_weights_path=empty)
    path = out / INCEPTION_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({k: v.half() if v.is_floating_point() else v for k, v in model.state_dict().items()}, path)


def build_tiny_zoo(out: str, force: bool = False) -> dict:
    """Build the zoo into ``out`` (a local path or ``s3://`` prefix) unless an
    up-to-date one is there. Returns the zoo manifest (``zoo.json``)."""
    manifest_uri = storage.join(out, "zoo.json")
    current = code_hash()
    if not force and storage.exists(manifest_uri):
        manifest = json.loads(storage.read_text(manifest_uri))
        if manifest.get("code_hash") == current:
            return {**manifest, "cached": True}
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "zoo"
        unet = build_sd(root)
        build_controlnet(root, unet)
        build_t2i_adapter(root, unet)
        build_humansd(root)
        build_handrefiner_controlnet(root, unet)
        build_sd_inpainting(root, unet)
        build_sam_checkpoint(root)
        build_llava(root)
        build_clip(root)
        build_inception(root)
        size = sum(f.stat().st_size for f in root.rglob("*") if f.is_file())
        manifest = {
            "code_hash": current,
            "build_seconds": round(time.perf_counter() - start, 2),
            "bytes": size,
            "models": {**ZOO_LAYOUT, "sam_arch": SAM_ARCH},
        }
        (root / "zoo.json").write_text(json.dumps(manifest, indent=1))
        if storage.is_local(out):
            target = Path(storage.local_path(out))
            if target.exists() and any(target.iterdir()):
                if not (target / "zoo.json").exists():
                    raise FileExistsError(f"{out} is not empty and holds no zoo.json: refusing to replace it")
                shutil.rmtree(target)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copytree(root, target)
        else:
            from handdiff.models.loading import copy_tree

            copy_tree(str(root), out)
    return {**manifest, "cached": False}


def model_locations(zoo: str) -> dict[str, str]:
    """Where each zoo model is (``{"sd15": "<zoo>/sd15", ...}``), from the zoo's fixed
    layout, so that configs can name them before the zoo is built."""
    return {key: storage.join(zoo, path) for key, path in ZOO_LAYOUT.items()}
