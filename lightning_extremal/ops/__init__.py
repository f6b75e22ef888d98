"""Pure tensor functions of the method: perturbation pyramids, smooth masks, the area
constraint, rewards, layer hooks, inversion priors and the pointing/IoU metrics. No Lightning,
no files."""
