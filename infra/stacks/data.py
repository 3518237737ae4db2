"""Stateful services of the `aws` profile: RDS PostgreSQL, ElastiCache Redis, OpenSearch, S3.

All of it is encrypted at rest with one customer-managed key per environment, sits in the
isolated ``data`` subnets, and accepts connections from the task security group only. The URLs the
service reads (``RISK_AUDIT_URL``, ``RISK_MLFLOW_URL``, ``RISK_REDIS_URL``, ``RISK_FEAST_REDIS``)
carry credentials, so they are kept in a Secrets Manager secret built from dynamic references:
no password appears in a template or in a plain environment variable.
"""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_elasticache as elasticache
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_opensearchservice as opensearch
from aws_cdk import aws_rds as rds
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from infra.environments import EnvironmentConfig
from infra.stacks.network import DATA_SUBNET_GROUP, DATA_SUBNETS, NetworkStack
from infra.storage import Access, Location

POSTGRES_VERSION = rds.PostgresEngineVersion.VER_16_11
REDIS_VERSION = "7.1"
OPENSEARCH_VERSION = opensearch.EngineVersion.OPENSEARCH_2_19
POSTGRES_PORT = 5432
REDIS_PORT = 6379
HTTPS_PORT = 443
DATABASE_USER = "risk"
# The audit store's roles (decisioning/adapters/audit/roles.py): the service may only INSERT and
# SELECT.
AUDIT_OWNER_ROLE = "risk_audit_owner"
AUDIT_SERVICE_ROLE = "risk_audit_service"
AUDIT_ANCHOR_PREFIX = Location.AUDIT_ANCHOR.value
# Objects are read and added, never deleted: buckets are versioned, an overwrite keeps history.
OBJECT_READ_ACTIONS = ("s3:GetObject", "s3:GetObjectVersion")
OBJECT_WRITE_ACTIONS = ("s3:PutObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts")
# Characters a generated password must not hold to sit in a URL unescaped.
URL_UNSAFE = " %+~`#$&*()|[]{}:;<>?!'/@\"\\"
# The database names of the `services` profile, so URLs differ only in host and credentials.
AUDIT_DATABASE = "risk_audit"
MLFLOW_DATABASE = "risk_mlflow"
# Job runs and monitoring results (decisioning/adapters/operations.py creates it on first use).
OPERATIONS_DATABASE = "risk_operations"


class DataStack(cdk.Stack):
    """Database, cache, search domain and buckets, plus the secret holding their URLs."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        network: NetworkStack,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self._config = config
        self._network = network
        self.key = kms.Key(
            self,
            "DataKey",
            description=f"Encrypts {config.stack_prefix} data at rest",
            enable_key_rotation=True,
            removal_policy=config.removal_policy,
        )
        self.data_bucket = self._bucket("Data")
        self.artifacts_bucket = self._bucket("Artifacts")
        self.audit_anchor_bucket = self._audit_anchor_bucket()
        self.audit_signing_key = self._audit_signing_key()
        self.database = self._database()
        self.cache, cache_token = self._cache()
        self.search = self._search_domain()
        self.audit_owner_credentials = self._role_credentials("AuditOwner", AUDIT_OWNER_ROLE)
        self.audit_service_credentials = self._role_credentials("AuditService", AUDIT_SERVICE_ROLE)
        self.connection_urls = self._connection_urls(cache_token)

    def s3_url(self, location: Location) -> str:
        """The ``s3://bucket/key`` a profile variable points at for ``location``."""
        return self._bucket_of(location).s3_url_for_object(location.value)

    def grant(self, role: iam.IRole, location: Location, access: Access) -> None:
        """Get and list, or also add, objects under ``location`` only; never delete.

        Not ``Bucket.grant_read``: that lists every key of the bucket, whatever the prefix.
        """
        bucket = self._bucket_of(location)
        writes = access is Access.READ_WRITE
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=[*OBJECT_READ_ACTIONS, *(OBJECT_WRITE_ACTIONS if writes else ())],
                resources=[bucket.arn_for_objects(location.object_pattern)],
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["s3:ListBucket"],
                resources=[bucket.bucket_arn],
                conditions={"StringLike": {"s3:prefix": list(location.list_prefixes)}},
            )
        )
        if writes:
            self.key.grant_encrypt_decrypt(role)
        else:
            self.key.grant_decrypt(role)

    def _bucket_of(self, location: Location) -> s3.Bucket:
        buckets = {
            "Data": self.data_bucket,
            "Artifacts": self.artifacts_bucket,
            "AuditAnchor": self.audit_anchor_bucket,
        }
        return buckets[location.bucket]

    def _security_group(self, name: str, port: int) -> ec2.SecurityGroup:
        """A group that admits the tasks on one port and opens no outbound connection."""
        group = ec2.SecurityGroup(
            self,
            f"{name}SecurityGroup",
            vpc=self._network.vpc,
            description=f"{name} ({self.stack_name})",
            allow_all_outbound=False,
        )
        group.add_ingress_rule(
            self._network.task_security_group, ec2.Port.tcp(port), "from API and worker tasks"
        )
        return group

    def _bucket(self, name: str) -> s3.Bucket:
        return s3.Bucket(
            self,
            f"{name}Bucket",
            encryption=s3.BucketEncryption.KMS,
            encryption_key=self.key,
            bucket_key_enabled=True,
            versioned=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            enforce_ssl=True,
            removal_policy=self._config.removal_policy,
        )

    def _audit_anchor_bucket(self) -> s3.Bucket:
        """Where audit checkpoints go: Object Lock in compliance mode, so none can be removed.

        Kept whatever the environment's removal policy: a bucket holding locked objects cannot be
        emptied before their retention ends, and the checkpoints are the point of it.
        """
        return s3.Bucket(
            self,
            "AuditAnchorBucket",
            encryption=s3.BucketEncryption.KMS,
            encryption_key=self.key,
            bucket_key_enabled=True,
            versioned=True,
            object_lock_enabled=True,
            object_lock_default_retention=s3.ObjectLockRetention.compliance(
                cdk.Duration.days(self._config.audit_anchor_retention_days)
            ),
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            enforce_ssl=True,
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )

    def _audit_signing_key(self) -> secretsmanager.Secret:
        """The checkpoint signing key (RISK_AUDIT_SIGNING_KEY), never stored in the database.

        Secrets Manager cannot make an Ed25519 key, so it starts as a random placeholder the
        service refuses (checkpoints off, decisions on, verify reports unanchored records) until
        the PEM from ``riskctl audit keygen`` is put in (docs/runbook.md, "Audit anchor").
        """
        return secretsmanager.Secret(
            self,
            "AuditSigningKey",
            description=f"{self._config.stack_prefix} audit checkpoint signing key (Ed25519 PEM)",
            generate_secret_string=secretsmanager.SecretStringGenerator(
                exclude_punctuation=True, password_length=32
            ),
        )

    def _role_credentials(self, name: str, username: str) -> rds.DatabaseSecret:
        """A generated password for one of the audit roles; set on the server once (runbook)."""
        return rds.DatabaseSecret(
            self, f"{name}Credentials", username=username, exclude_characters=URL_UNSAFE
        )

    def _database(self) -> rds.DatabaseInstance:
        """PostgreSQL for the audit store and the MLflow backend; TLS is forced server-side."""
        engine = rds.DatabaseInstanceEngine.postgres(version=POSTGRES_VERSION)
        config = self._config
        return rds.DatabaseInstance(
            self,
            "Database",
            engine=engine,
            instance_type=ec2.InstanceType(config.database_instance_type),
            vpc=self._network.vpc,
            vpc_subnets=DATA_SUBNETS,
            security_groups=[self._security_group("Database", POSTGRES_PORT)],
            credentials=rds.Credentials.from_generated_secret(DATABASE_USER),
            database_name=AUDIT_DATABASE,
            parameter_group=rds.ParameterGroup(
                self, "DatabaseParameters", engine=engine, parameters={"rds.force_ssl": "1"}
            ),
            allocated_storage=config.database_storage_gib,
            max_allocated_storage=config.database_storage_gib * 4,
            storage_type=rds.StorageType.GP3,
            storage_encrypted=True,
            storage_encryption_key=self.key,
            publicly_accessible=False,
            multi_az=config.multi_az,
            backup_retention=cdk.Duration.days(config.database_backup_days),
            copy_tags_to_snapshot=True,
            deletion_protection=config.deletion_protection,
            removal_policy=config.database_removal_policy,
        )

    def _cache(self) -> tuple[elasticache.CfnReplicationGroup, secretsmanager.Secret]:
        """Redis for the Feast online store and embedding cache, TLS and AUTH token required."""
        config = self._config
        token = secretsmanager.Secret(
            self,
            "CacheAuthToken",
            description=f"{config.stack_prefix} Redis AUTH token",
            generate_secret_string=secretsmanager.SecretStringGenerator(
                exclude_punctuation=True, password_length=64
            ),
        )
        subnets = elasticache.CfnSubnetGroup(
            self,
            "CacheSubnets",
            description=f"{config.stack_prefix} cache subnets",
            subnet_ids=self._network.vpc.select_subnets(
                subnet_group_name=DATA_SUBNET_GROUP
            ).subnet_ids,
        )
        cache = elasticache.CfnReplicationGroup(
            self,
            "Cache",
            replication_group_description=f"{config.stack_prefix} Feast online store",
            engine="redis",
            engine_version=REDIS_VERSION,
            cache_node_type=config.cache_node_type,
            num_node_groups=1,
            replicas_per_node_group=config.cache_replicas,
            automatic_failover_enabled=config.multi_az,
            multi_az_enabled=config.multi_az,
            cache_subnet_group_name=subnets.ref,
            security_group_ids=[self._security_group("Cache", REDIS_PORT).security_group_id],
            port=REDIS_PORT,
            at_rest_encryption_enabled=True,
            kms_key_id=self.key.key_id,
            transit_encryption_enabled=True,
            auth_token=token.secret_value.unsafe_unwrap(),
            snapshot_retention_limit=config.cache_snapshot_days,
            auto_minor_version_upgrade=True,
        )
        cache.apply_removal_policy(config.removal_policy)
        return cache, token

    def _search_domain(self) -> opensearch.Domain:
        """OpenSearch for the evidence index; reachable only inside the VPC, over TLS 1.2+."""
        config = self._config
        return opensearch.Domain(
            self,
            "Evidence",
            version=OPENSEARCH_VERSION,
            vpc=self._network.vpc,
            vpc_subnets=[self._search_subnets()],
            security_groups=[self._security_group("Search", HTTPS_PORT)],
            capacity=opensearch.CapacityConfig(
                data_nodes=config.search_data_nodes,
                data_node_instance_type=config.search_instance_type,
                master_nodes=config.search_master_nodes or None,
                master_node_instance_type=(
                    config.search_instance_type if config.search_master_nodes else None
                ),
                multi_az_with_standby_enabled=False,
            ),
            zone_awareness=opensearch.ZoneAwarenessConfig(
                enabled=config.multi_az, availability_zone_count=2 if config.multi_az else None
            ),
            ebs=opensearch.EbsOptions(
                volume_size=config.search_volume_gib, volume_type=ec2.EbsDeviceVolumeType.GP3
            ),
            encryption_at_rest=opensearch.EncryptionAtRestOptions(enabled=True, kms_key=self.key),
            node_to_node_encryption=True,
            enforce_https=True,
            tls_security_policy=opensearch.TLSSecurityPolicy.TLS_1_2,
            removal_policy=config.removal_policy,
        )

    def _search_subnets(self) -> ec2.SubnetSelection:
        """One data subnet per zone the domain spans: a single-node domain takes exactly one."""
        subnets = self._network.vpc.select_subnets(subnet_group_name=DATA_SUBNET_GROUP).subnets
        return ec2.SubnetSelection(subnets=subnets if self._config.multi_az else subnets[:1])

    def _connection_urls(self, cache_token: secretsmanager.Secret) -> secretsmanager.Secret:
        """One secret whose fields are the full URLs, each resolved by CloudFormation at deploy.

        ECS injects secret fields as environment variables, and the settings read whole URLs, so
        the URLs themselves are the secret; their parts are dynamic references to the generated
        database and cache credentials.
        """
        credentials = self.database.secret
        assert credentials is not None, "the database was created with a generated secret"
        user = credentials.secret_value_from_json("username").unsafe_unwrap()
        password = credentials.secret_value_from_json("password").unsafe_unwrap()
        host = self.database.db_instance_endpoint_address
        port = self.database.db_instance_endpoint_port
        postgres = f"postgresql+psycopg://{user}:{password}@{host}:{port}"
        audit_service = self._role_url(self.audit_service_credentials, host, port)
        audit_owner = self._role_url(self.audit_owner_credentials, host, port)
        redis_host = self.cache.attr_primary_end_point_address
        redis_port = self.cache.attr_primary_end_point_port
        token = cache_token.secret_value.unsafe_unwrap()
        return secretsmanager.Secret(
            self,
            "ConnectionUrls",
            description=(
                f"{self._config.stack_prefix} audit, MLflow, operations, Redis and Feast URLs"
            ),
            secret_object_value={
                "audit_url": cdk.SecretValue.unsafe_plain_text(f"{audit_service}/{AUDIT_DATABASE}"),
                "audit_owner_url": cdk.SecretValue.unsafe_plain_text(
                    f"{audit_owner}/{AUDIT_DATABASE}"
                ),
                "mlflow_url": cdk.SecretValue.unsafe_plain_text(f"{postgres}/{MLFLOW_DATABASE}"),
                "operations_url": cdk.SecretValue.unsafe_plain_text(
                    f"{postgres}/{OPERATIONS_DATABASE}"
                ),
                "redis_url": cdk.SecretValue.unsafe_plain_text(
                    f"rediss://:{token}@{redis_host}:{redis_port}/0"
                ),
                # Feast's connection-string form; its store config appends ",ssl=true".
                "feast_redis": cdk.SecretValue.unsafe_plain_text(
                    f"{redis_host}:{redis_port},password={token}"
                ),
            },
        )

    @staticmethod
    def _role_url(credentials: rds.DatabaseSecret, host: str, port: str) -> str:
        user = credentials.secret_value_from_json("username").unsafe_unwrap()
        password = credentials.secret_value_from_json("password").unsafe_unwrap()
        return f"postgresql+psycopg://{user}:{password}@{host}:{port}"
