"""The response simulator: a world with known true effects on a generated brokerage (issue 7).

- :mod:`panhuo.simulate.world`: the true response model (baseline hazards by tier, lifts by
  playbook, tier and arm, channel, harm, fatigue) and its exact success probabilities;
- :mod:`panhuo.simulate.loop`: ``panhuo simulate``, weeks of runs, delivery, responses written as
  contract data and loaded, posteriors and regret (resumable);
- :mod:`panhuo.simulate.replay`: the same world and bandit in memory, for the bandit's validation.
"""
