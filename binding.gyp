{
  "targets": [
    {
      "target_name": "slabnet_tap",
      "sources": ["native/tap.c"],
      "cflags": ["-std=gnu11", "-Wall", "-Wextra", "-O2"],
      "conditions": [
        ["OS!='linux'", { "type": "none", "sources!": ["native/tap.c"] }]
      ]
    }
  ]
}
