"""How the Redis modules reach a server: one home for the options of
plugins/module_utils/webtier_redis.py's CONNECTION_ARGS (redis_command,
redis_runtime_config: extends_documentation_fragment webtier.stack.redis_connection)."""


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  socket:
    description: Unix socket of the server; wins over O(host) and O(port).
    type: path
  host:
    description: Address of the server.
    type: str
    default: 127.0.0.1
  port:
    description: Port of the server.
    type: int
    default: 6379
  user:
    description: ACL user to authenticate as (none for a plain C(requirepass)).
    type: str
  password:
    description: Password of O(user); not logged.
    type: str
    default: ""
  tls_ca_file:
    description: Connect with TLS and verify the server against this CA (PEM file).
    type: path
  timeout:
    description: Seconds to wait for the connection and for each reply.
    type: float
    default: 5.0
"""
