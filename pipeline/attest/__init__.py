"""Signed releases (#28): what proves a digest is one Slipway built from a reviewed commit.

Stitch attests each release it makes, beside the index and never inside it (Lambda and ECS pull the index and its
platform children only): OCI artifacts whose ``subject`` is the release's index, discoverable through the registry's
referrers API (:mod:`pipeline.attest.referrers`), each one a DSSE envelope signed with the platform's KMS release key
(:mod:`pipeline.attest.dsse`, :mod:`pipeline.attest.signer`):

- a **signature**: an in-toto statement whose subject is the index digest (cosign's and Notation's job, done with the
  in-toto format every verifier reads);
- a **SLSA provenance** statement (in-toto v1): the builder, the source repository and commit, the buildspec, and
  every base digest the lock gave the builds.

``slipway deploy`` verifies them before anything changes (:mod:`pipeline.attest.release`); ``slipway verify
--attestations`` checks a release on demand.
"""
