"""Learning: feeding process data back so the strategies improve (issue 7, DESIGN.md section 7).

Modules (imported on use, so importing ``panhuo.learn`` stays cheap):

- :mod:`panhuo.learn.bandit`: Thompson sampling per segment (Beta-Bernoulli on the success event,
  with an exploration floor), the arm probabilities a run logs with every assignment;
- :mod:`panhuo.learn.uplift`: T-learner and X-learner uplift models (LightGBM), Qini/AUUC on a time
  split, and the scores a playbook audience can rank by;
- :mod:`panhuo.learn.ope`: off-policy evaluation of a targeting policy from logged propensities
  (IPS, self-normalised IPS, doubly robust) with confidence intervals;
- :mod:`panhuo.learn.feedback`: outcomes written back as tags (responded in 90 days, best channel,
  best benefit kind, contact fatigue).
"""
