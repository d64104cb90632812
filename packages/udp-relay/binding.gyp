{
  "targets": [
    {
      "target_name": "udp_relay",
      "sources": ["src/udp-relay.c"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter", "-fvisibility=hidden"],
      "defines": ["NAPI_VERSION=8"]
    }
  ]
}
