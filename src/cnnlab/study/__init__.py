"""Studies: experiments over several trained runs, written up as a report folder."""
