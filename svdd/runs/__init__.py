"""runs: batch generation, the `svdd` command.

- `cli`: the command line (`svdd generate`, `svdd train-value`, `svdd domains`);
- `generation`: sharded, resumable, cooperating runs (`generate`, `RunSettings`); `shards`: one
  shard sampled, written and verified; `rundir`: the run directory's lock, claims and atomic
  writes; `outputs`: the sample table and a domain's own formats;
- `jobs`: what a run samples (a plug-in domain, or the user's own process factory);
  `plugins`: domain discovery through the `svdd.domains` entry-point group and user objects
  named on the command line; `executors`: process pools and Ray.

Imports: `svdd.api`, `svdd.sampling` and the shared base; nothing imports `svdd.runs` but the
command line and the domains' plug-in declarations.
"""

from .executors import make_executor, process_pool
from .generation import RunSettings, environment, generate
from .jobs import DomainJob, ProcessJob
from .plugins import Domain, domain_names, domain_reward, load_domain

__all__ = [
    "Domain",
    "DomainJob",
    "ProcessJob",
    "RunSettings",
    "domain_names",
    "domain_reward",
    "environment",
    "generate",
    "load_domain",
    "make_executor",
    "process_pool",
]
