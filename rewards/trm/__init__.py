"""The client side of the thinking reward model (TRM, "the judge"): how Trust-GRPO asks it for ``Rt``.

``config`` (the ``reward.thinking_rm`` settings, defined once), ``client`` (:class:`~.client.ThinkingJudge`: HTTP,
retries, counters), ``prompt`` (template, image encoding, messages), ``parse`` (reading the score), ``codes`` (status
and error codes of a judgement), ``inputs`` (the question and image a judgement is asked about).
"""
