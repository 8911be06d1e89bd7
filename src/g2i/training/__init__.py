"""Training: a loop with exact resume, EMA, warm-up + cosine LR, gradient clipping and Accelerate."""
