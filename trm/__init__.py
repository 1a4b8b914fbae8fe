"""Training the thinking reward model (TRM) with verl's SFT trainer: the pieces verl 0.9.1 lacks for this data."""
