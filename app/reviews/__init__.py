"""Community review: expertise, reviewer matching, assignments, structured reviews, comments."""
