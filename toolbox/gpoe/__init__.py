"""gPoE: Gaussian-process experts fused by entropy change (Cao & Fleet 2014), as `toolbox fuse-gp`."""
