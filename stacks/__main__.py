import pulumi
cfg = pulumi.Config("hastack")
pulumi.export("hello", cfg.get("platform") or "local")
