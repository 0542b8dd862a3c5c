"""What runs inside worker processes besides tasks: the heartbeat, lost-work recovery and
the housekeeping timers of the platform worker."""
