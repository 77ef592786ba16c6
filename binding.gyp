{
  "targets": [
    {
      "target_name": "prober",
      "sources": ["testers/native/prober.c", "testers/native/icmp.c"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"]
    },
    {
      "target_name": "peercred",
      "sources": ["common/native/peercred.c"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"]
    }
  ]
}
