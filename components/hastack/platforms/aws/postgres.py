"""PostgresCluster on AWS: Patroni nodes (one per zone, encrypted gp3 data volume, Consul client agent), or
in managed mode an RDS Multi-AZ instance with read replicas in other zones."""

from __future__ import annotations

import dataclasses

import pulumi
import pulumi_aws as aws

from ...render import SUPERUSER
from ...topology import Host
from .cloud_init import user_data
from .hosts import Context, Machine, alarm, instance_role, machine
from .site import base_tags, host_tags


class PostgresCluster(pulumi.ComponentResource):
    """Postgres nodes keyed by zone (``<name>-postgres-<zone>``), or RDS in ``postgres.mode: rds``."""

    nodes: dict[str, Machine]
    """Patroni machines keyed by host name (empty in RDS mode)."""
    patroni_urls: pulumi.Output[list[str]]
    """Patroni REST API of every node."""
    writer_address: pulumi.Output[str] | None
    """RDS mode: address of the Multi-AZ primary."""
    reader_addresses: pulumi.Output[list[str]]
    """RDS mode: addresses of the read replicas."""
    backup_bucket: pulumi.Output[str] | None
    """S3 bucket of WAL archives, when backups are enabled."""
    master_secret_arn: pulumi.Output[str] | None
    """RDS mode: Secrets Manager ARN of the master password (RDS manages and rotates it)."""

    def __init__(self, name: str, ctx: Context, opts: pulumi.ResourceOptions | None = None):
        super().__init__("hastack:aws:PostgresCluster", name, None, opts)
        self.nodes = {}
        self.writer_address = None
        self.master_secret_arn = None
        self.reader_addresses = pulumi.Output.from_input([])
        self.backup_bucket = None
        if ctx.spec.postgres.mode == "rds":
            self._rds(name, ctx)
            self.patroni_urls = pulumi.Output.from_input([])
        else:
            if ctx.spec.postgres.backups.enabled:
                self.backup_bucket = self._bucket(name, ctx)
            self._patroni(name, ctx)
            port = ctx.spec.ports.patroni_api
            self.patroni_urls = pulumi.Output.from_input([f"http://{m.private_ip}:{port}" for m in self.nodes.values()])
        outputs: dict[str, object] = {"patroni_urls": self.patroni_urls, "reader_addresses": self.reader_addresses}
        if self.writer_address is not None:
            outputs["writer_address"] = self.writer_address
        if self.backup_bucket is not None:
            outputs["backup_bucket"] = self.backup_bucket
        self.register_outputs(outputs)

    # ----------------------------------------------------------------------------------------------
    def _bucket(self, name: str, ctx: Context) -> pulumi.Output[str]:
        opts = pulumi.ResourceOptions(parent=self)
        tags = base_tags(ctx.spec, ctx.stack, f"{name}-wal")
        bucket = aws.s3.Bucket(f"{name}-wal", bucket_prefix=f"{ctx.name}-{ctx.stack}-wal-", tags=tags, opts=opts)
        aws.s3.BucketPublicAccessBlock(
            f"{name}-wal",
            bucket=bucket.id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
            opts=opts,
        )
        aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-wal",
            bucket=bucket.id,
            rules=[
                {"apply_server_side_encryption_by_default": {"sse_algorithm": "aws:kms"}, "bucket_key_enabled": True}
            ],
            opts=opts,
        )
        aws.s3.BucketVersioning(
            f"{name}-wal", bucket=bucket.id, versioning_configuration={"status": "Enabled"}, opts=opts
        )
        days = ctx.spec.postgres.backups.retention_days
        aws.s3.BucketLifecycleConfiguration(
            f"{name}-wal",
            bucket=bucket.id,
            rules=[
                {
                    "id": "retention",
                    "status": "Enabled",
                    "filter": {"prefix": ""},
                    "expiration": {"days": days},
                    "noncurrent_version_expiration": {"noncurrent_days": days},
                }
            ],
            opts=opts,
        )
        return bucket.bucket

    def _patroni(self, name: str, ctx: Context) -> None:
        plan = ctx.plan
        extra: list[pulumi.Input[dict[str, object]]] = []
        if self.backup_bucket is not None:
            extra.append(
                self.backup_bucket.apply(
                    lambda b: {
                        "Sid": "WalArchive",
                        "Effect": "Allow",
                        "Action": ["s3:PutObject", "s3:GetObject", "s3:ListBucket"],
                        "Resource": [f"arn:aws:s3:::{b}", f"arn:aws:s3:::{b}/*"],
                    }
                )
            )
        profile = instance_role(
            ctx,
            "postgres",
            self,
            secret_keys=("gossip", "consul_token", "superuser", "replication", "rewind"),
            extra_statements=extra,
        )
        for host in plan.postgres:
            self.nodes[host.name] = self._node(name, ctx, host, profile)

    def _node(self, name: str, ctx: Context, host: Host, profile: aws.iam.InstanceProfile) -> Machine:
        spec = ctx.spec
        vol_name = f"{ctx.name}-{host.name}-data"
        volume = aws.ebs.Volume(
            vol_name,
            availability_zone=host.zone,
            size=spec.aws.data_volume_gb,
            type="gp3",
            iops=spec.aws.data_volume_iops,
            encrypted=True,
            # The data outlives the instance: a replaced instance reattaches it and Patroni rejoins.
            final_snapshot=spec.deletion_protection,
            tags=host_tags(spec, ctx.stack, vol_name, host),
            opts=pulumi.ResourceOptions(parent=self, protect=spec.deletion_protection),
        )

        def render(args: list[str | None]) -> str:
            volume_id, bucket = args
            site = ctx.site
            if bucket:
                archive = (
                    f"aws s3 cp --only-show-errors --region {spec.aws.region} "
                    f"%p s3://{bucket}/{spec.postgres.scope}/wal/%f"
                )
                site = dataclasses.replace(site, extra={**site.extra, "archive_command": archive})
            return user_data(
                ctx.plan,
                host,
                site,
                ctx.param_names,
                region=spec.aws.region,
                data_volume_id=volume_id,
            )

        data = pulumi.Output.all(volume.id, self.backup_bucket).apply(render)
        node = machine(ctx, host, spec.aws.instance_types.postgres, profile, data, self)
        aws.ec2.VolumeAttachment(
            vol_name,
            device_name="/dev/xvdf",
            volume_id=volume.id,
            instance_id=node.instance.id,
            # Let Patroni stop Postgres cleanly before the volume goes away.
            stop_instance_before_detaching=True,
            opts=pulumi.ResourceOptions(parent=self),
        )
        return node

    # ----------------------------------------------------------------------------------------------
    def _rds(self, name: str, ctx: Context) -> None:
        spec, rds = ctx.spec, ctx.spec.postgres.rds
        opts = pulumi.ResourceOptions(parent=self)
        tags = base_tags(spec, ctx.stack, f"{name}-rds")
        subnets = aws.rds.SubnetGroup(f"{name}-rds", subnet_ids=list(ctx.subnet_ids.values()), tags=tags, opts=opts)
        params = aws.rds.ParameterGroup(
            f"{name}-rds",
            family=f"postgres{spec.postgres.version}",
            parameters=[
                {"name": "rds.force_ssl", "value": "1"},
                {
                    "name": "max_connections",
                    "value": str(spec.postgres.max_connections),
                    "apply_method": "pending-reboot",
                },
                *[
                    {
                        "name": k,
                        "value": str(v).lower() if isinstance(v, bool) else str(v),
                        "apply_method": "pending-reboot",
                    }
                    for k, v in spec.postgres.parameters.items()
                ],
            ],
            tags=tags,
            opts=opts,
        )
        sg = ctx.sg_ids["postgres"]
        protect = spec.deletion_protection
        ident = f"{ctx.name}-{ctx.stack}"
        primary_zone = spec.zones[0]
        primary = aws.rds.Instance(
            f"{name}-primary",
            identifier=f"{ident}-primary",
            engine="postgres",
            engine_version=str(spec.postgres.version),
            instance_class=rds.instance_class,
            allocated_storage=rds.allocated_storage_gb,
            storage_type=rds.storage_type,
            storage_encrypted=True,
            multi_az=True,
            db_subnet_group_name=subnets.name,
            parameter_group_name=params.name,
            vpc_security_group_ids=[sg],
            username=SUPERUSER,
            # RDS generates the master password into Secrets Manager: it never enters Pulumi state.
            manage_master_user_password=True,
            port=spec.ports.postgres,
            publicly_accessible=False,
            backup_retention_period=rds.backup_retention_days,
            deletion_protection=protect,
            skip_final_snapshot=not protect,
            final_snapshot_identifier=f"{ident}-final" if protect else None,
            copy_tags_to_snapshot=True,
            performance_insights_enabled=rds.performance_insights,
            auto_minor_version_upgrade=True,
            tags={
                **tags,
                "hastack.io/role": "postgres",
                "hastack.io/zone": primary_zone,
                "hastack.io/host": f"{ident}-primary",
            },
            opts=pulumi.ResourceOptions(parent=self, protect=protect),
        )
        self.writer_address = primary.address
        self.master_secret_arn = primary.master_user_secrets.apply(lambda s: s[0].secret_arn if s else "")
        others = [z for z in spec.zones if z != primary_zone]
        readers = []
        for i in range(rds.read_replicas):
            zone = others[i % len(others)]
            ordinal = i // len(others) + 1
            suffix = zone if ordinal == 1 else f"{zone}-{ordinal}"
            replica = aws.rds.Instance(
                f"{name}-replica-{suffix}",
                identifier=f"{ident}-replica-{suffix}",
                replicate_source_db=primary.identifier,
                instance_class=rds.instance_class,
                storage_type=rds.storage_type,
                storage_encrypted=True,
                availability_zone=zone,
                parameter_group_name=params.name,
                vpc_security_group_ids=[sg],
                publicly_accessible=False,
                # Replicas are rebuilt from the primary; their own snapshots would only cost.
                skip_final_snapshot=True,
                deletion_protection=protect,
                performance_insights_enabled=rds.performance_insights,
                tags={
                    **tags,
                    "hastack.io/role": "postgres",
                    "hastack.io/zone": zone,
                    "hastack.io/host": f"{ident}-replica-{suffix}",
                },
                opts=opts,
            )
            alarm(
                ctx,
                f"{name}-replica-{suffix}-lag",
                f"RDS replica in {zone} lags the primary by more than 60 s",
                "AWS/RDS",
                "ReplicaLag",
                {"DBInstanceIdentifier": replica.identifier},
                comparison="GreaterThanThreshold",
                threshold=60,
                tags=tags,
                opts=opts,
            )
            readers.append(replica.address)
        self.reader_addresses = pulumi.Output.all(*readers).apply(list) if readers else pulumi.Output.from_input([])
        alarm(
            ctx,
            f"{name}-primary-storage",
            "RDS primary has less than 10% free storage",
            "AWS/RDS",
            "FreeStorageSpace",
            {"DBInstanceIdentifier": primary.identifier},
            statistic="Minimum",
            period=300,
            evaluation_periods=1,
            comparison="LessThanThreshold",
            threshold=rds.allocated_storage_gb * 1024**3 * 0.1,
            tags=tags,
            opts=opts,
        )
