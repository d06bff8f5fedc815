"""Account status (effective, sleeping, dormant, new_empty), its history and transitions, as Ibis expressions."""
