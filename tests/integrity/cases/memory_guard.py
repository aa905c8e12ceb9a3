# Refuse to allocate unless a data limit of at most 8 GiB stands in the way (shared machine).
import resource

_soft = resource.getrlimit(resource.RLIMIT_DATA)[0]
if _soft == resource.RLIM_INFINITY or _soft > 8 * 2**30:
    raise RuntimeError("no data limit on this kernel: not allocating")
