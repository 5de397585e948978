"""Two-stage generation (SPEC 6): stage-1 hands, a canvas, stage-2 body outpainting."""
