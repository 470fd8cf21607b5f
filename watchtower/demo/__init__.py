"""`watchtower demo`: the whole reference pipeline and watchtower on one machine, with a count report."""
