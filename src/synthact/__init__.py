"""synthact: synthetic action clips (render), TSN optical flow (flow) and training (train)."""
