"""``mlp rollout``: a canary that is promoted, or rolled back, on what Prometheus saw.

``mlp canary`` and ``mlp promote`` leave the judgement to a person watching the Canary panels.
``mlp rollout SERVICE VERSION --prometheus URL`` makes it: it points the ``canary`` alias at
VERSION, then every ``--interval`` seconds reads, from the services' own metrics since it began,
the canary's requests, failures and p95 model time beside the stable model's, and whether a pod
stopped the canary; failures and latency are also judged over the last interval alone. It rolls back
(``canary`` -> the champion's version) as soon as the canary is worse by the same measures as
the ``CanaryFailing``, ``CanarySlow`` and ``CanaryStopped`` alerts, and promotes VERSION once
``--steps`` readings passed with at least ``--min-requests`` canary requests. Too little canary
traffic to judge is a roll-back too: nothing is promoted unseen.
With ``--ramp 5,25,50`` the canary answers 5 % of the requests until a reading has judged it
sound on ``--min-requests``, then 25 %, then 50 % (the registry's share, which the pods read at
each refresh), so a bad version meets a small share of the traffic first, as Flagger's
``stepWeights`` do; a reading with too few canary requests to judge holds the share.

The readings start once the pods serve VERSION: until no pod answers the canary's share with
another version (the canary before, which a pod keeps while VERSION does not load), and at least
one answers it with VERSION (``<svc>_canary_model_info{version}``), nothing is counted, since the
answers would be another version's. A VERSION no pod has loaded within ``--load-timeout`` seconds
is rolled back, never judged; and a reading that finds a pod on another canary version (the alias
moved under the rollout), or none serving VERSION any more (the alias deleted: the canary ended),
rolls it back too, as does one whose interval had the router draw the canary for no request while
it drew the stable model often enough that the share could not have missed them all
(``<svc>_variant_draws_total``: requests asked for, pinned or keyed are no draws): the counters since
the start would otherwise stand still, and pass VERSION on answers it gave before it stopped answering.

The champion is read again at every reading and before the promotion (a failed read asked again
once): one moved under the rollout (``mlp promote``, a ``mlp train`` that won) is not overwritten,
and the canary, judged against another version's answers, is ended on it. One moved to VERSION
itself (promoted by hand meanwhile) ends the canary, and the rollout succeeds.

Flagger and Argo Rollouts run the same loop as controllers in the cluster; here it is one
command, run by hand or by a delivery pipeline, against the registry the pods follow.

The parts, one module each: :mod:`~servekit.rollout.criteria` (when a canary is worse: the
verdicts on a reading), :mod:`~servekit.rollout.readings` (what a reading holds, and the PromQL
that reads it), :mod:`~servekit.rollout.pods` (waiting for the pods to serve VERSION),
:mod:`~servekit.rollout.champion` (the champion read again), :mod:`~servekit.rollout.watching`
(the readings, one an interval) and :mod:`~servekit.rollout.run` (``rollout``: the canary
started, then promoted or rolled back).
"""
