"""TSN training and evaluation on mixes of real and synthetic clips (torch; mmaction2 optional)."""
