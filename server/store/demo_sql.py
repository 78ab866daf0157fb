"""Reference data and SQL of the demo dataset generator (driven by ``server.store.demo``).

Everything the demo invents lives here: providers, billing and sub accounts, regions, services and
SKUs with list prices, commitment discounts, contracts, and Kubernetes nodes whose cost is split over
namespaces. The reference data is rendered once into DuckDB macros (constant lists of structs). The
fact rows are pure projections over ``range(n)`` that index those lists with hashes of
``(seed, month, row index)``, so a month streams straight into Parquet without joins or sorts.

Every kind of row first yields the same *internal* columns (``INTERNAL``: indexes into the reference
lists plus quantities, prices and costs); ``month_sql`` maps them to the 65 FOCUS columns once.
Money is exact: prices are ``DECIMAL`` literals, quantities are integers times a decimal step, and
every cost is a product of those, so ``ListCost = ListUnitPrice × PricingQuantity`` holds exactly.
Decimal division (which DuckDB turns into DOUBLE) is never used; casts only widen or keep the scale.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from tools.catalog import DataType, contract_commitment, cost_and_usage

D = Decimal
EUR_PER_USD = D("0.92")  # the EUR price list is the USD one at this rate, rounded to 8 places
SPOT_FACTOR = "0.30"  # spot price = list price × this
HOUR_STRIDE = 409  # a prime: (409·i + offset) mod hours visits every hour of a month once
TERM_MONTHS = 36  # every commitment and contract runs three years

# -- reference data -----------------------------------------------------------------------------
# fmt: off

# name, tag template (flat key-value JSON; provider conventions differ in key spelling)
PROVIDERS = [
    ("AWS", '{"Environment":"{env}","CostCenter":"{cc}","Owner":"{team}","Application":"{app}"}'),
    ("Microsoft", '{"environment":"{env}","costCenter":"{cc}","owner":"{team}","application":"{app}"}'),
    ("Google Cloud", '{"environment":"{env}","cost-center":"{cc}","team":"{team}","app":"{app}"}'),
]
_MS = ("/providers/Microsoft.Billing/billingAccounts/5c1e8a37-29d4-4f0b-b6a2-71e9d3c04f58:"
       "8e2b6d14-0a7f-4c93-a5e1-3f96b2c7d840_2019-05-31/billingProfiles/")
# id, name, type, currency, provider, contracted price factor (negotiated discount), tax rate, tax name,
# negotiated contract commitment (index into the Contract Commitment rows) or None,
# services an SLA credit may refer to, support service (adjustments)
BillingAccount = tuple[str, str, str, str, int, str, str, str, int | None, list[str], str]
BILLING_ACCOUNTS: list[BillingAccount] = [
    ("483920175526", "ExampleCorp AWS Organization", "Payer Account", "USD", 0, "0.94", "0.0725", "US sales tax",
     5, ["AmazonEC2", "AmazonRDS"], "AWS Support (Business)"),
    (_MS + "K7QX-M2TR-BG7-PGB", "ExampleCorp US", "Billing Profile", "USD", 1, "0.90", "0.0625", "US sales tax",
     6, ["Virtual Machines", "Azure SQL Database"], "Azure Support"),
    (_MS + "VX3D-9KLM-BG7-TGB", "ExampleCorp Europe GmbH", "Billing Profile", "EUR", 1, "0.88", "0.19", "VAT",
     7, ["Virtual Machines", "Azure Blob Storage"], "Azure Support"),
    ("01B2C3-D4E5F6-A7B8C9", "ExampleCorp GCP Billing", "Billing Account", "USD", 2, "1.00", "0.08", "US sales tax",
     None, ["Compute Engine", "BigQuery"], "Google Cloud Support"),
]
# id, name, type, billing account, environment, id part used in resource ids, regions
SubAccount = tuple[str, str, str, int, str, str, list[str]]
_SUB = "/subscriptions/"
SUB_ACCOUNTS: list[SubAccount] = [
    ("112233445566", "prod-web", "Linked Account", 0, "prod", "112233445566", ["us-east-1", "us-west-2"]),
    ("223344556677", "prod-data", "Linked Account", 0, "prod", "223344556677", ["us-east-1", "eu-west-1"]),
    ("334455667788", "staging", "Linked Account", 0, "staging", "334455667788", ["us-east-1", "eu-central-1"]),
    ("445566778899", "dev-sandbox", "Linked Account", 0, "dev", "445566778899", ["us-west-2"]),
    ("556677889900", "shared-services", "Linked Account", 0, "prod", "556677889900", ["us-east-1", "eu-west-1"]),
    (_SUB + "3b9f2c71-6d4e-4a08-9c15-e27a8b40d6f3", "ExampleCorp Prod US", "Subscription", 1, "prod",
     _SUB + "3b9f2c71-6d4e-4a08-9c15-e27a8b40d6f3", ["eastus", "eastus2"]),
    (_SUB + "a40e5d18-2f7b-4c6a-8e93-51d0c9b2f7a4", "ExampleCorp Dev US", "Subscription", 1, "dev",
     _SUB + "a40e5d18-2f7b-4c6a-8e93-51d0c9b2f7a4", ["eastus", "westus2"]),
    (_SUB + "f17c3a92-8b05-4e1d-b6f4-09a2e7d35c81", "ExampleCorp Shared US", "Subscription", 1, "prod",
     _SUB + "f17c3a92-8b05-4e1d-b6f4-09a2e7d35c81", ["eastus2"]),
    (_SUB + "6e2d8b40-1c9a-4f73-a5e8-c3b7f0142d96", "ExampleCorp Prod EU", "Subscription", 2, "prod",
     _SUB + "6e2d8b40-1c9a-4f73-a5e8-c3b7f0142d96", ["westeurope", "northeurope"]),
    (_SUB + "0d7a4f29-e3b6-48c1-9f05-b82c6e1a73d4", "ExampleCorp Staging EU", "Subscription", 2, "staging",
     _SUB + "0d7a4f29-e3b6-48c1-9f05-b82c6e1a73d4", ["westeurope", "germanywestcentral"]),
    (_SUB + "c58b1e63-7a2d-4d90-b4f1-6e3a9d2c08b7", "ExampleCorp Data EU", "Subscription", 2, "prod",
     _SUB + "c58b1e63-7a2d-4d90-b4f1-6e3a9d2c08b7", ["northeurope"]),
    ("examplecorp-prod-web", "ExampleCorp Prod Web", "Project", 3, "prod", "examplecorp-prod-web",
     ["europe-west1", "us-central1"]),
    ("examplecorp-prod-analytics", "ExampleCorp Prod Analytics", "Project", 3, "prod", "examplecorp-prod-analytics",
     ["europe-west1", "europe-west4"]),
    ("examplecorp-staging", "ExampleCorp Staging", "Project", 3, "staging", "examplecorp-staging", ["europe-west1"]),
    ("examplecorp-ml-sandbox", "ExampleCorp ML Sandbox", "Project", 3, "dev", "examplecorp-ml-sandbox",
     ["us-central1"]),
]
# id, display name, availability zones
REGIONS: list[tuple[str, str, list[str]]] = [
    ("us-east-1", "US East (N. Virginia)", ["us-east-1a", "us-east-1b", "us-east-1c"]),
    ("us-west-2", "US West (Oregon)", ["us-west-2a", "us-west-2b"]),
    ("eu-west-1", "Europe (Ireland)", ["eu-west-1a", "eu-west-1b", "eu-west-1c"]),
    ("eu-central-1", "Europe (Frankfurt)", ["eu-central-1a", "eu-central-1b"]),
    ("eastus", "East US", []), ("eastus2", "East US 2", []), ("westus2", "West US 2", []),
    ("westeurope", "West Europe", []), ("northeurope", "North Europe", []),
    ("germanywestcentral", "Germany West Central", []),
    ("europe-west1", "Belgium", ["europe-west1-b", "europe-west1-c", "europe-west1-d"]),
    ("europe-west4", "Netherlands", ["europe-west4-a", "europe-west4-b"]),
    ("us-central1", "Iowa", ["us-central1-a", "us-central1-b", "us-central1-f"]),
]
# fmt: on


@dataclass(frozen=True)
class Sku:
    id: str
    desc: str
    meter: str
    price_usd: str  # list unit price, at most 8 decimal places
    unit: str  # PricingUnit
    consumed_unit: str
    consumed_factor: int  # ConsumedQuantity = PricingQuantity × factor
    span: int  # PricingQuantity = (1 + h mod span) × step ...
    step: str
    partial_pct: int = 0  # ... except this share of rows: a fraction of one unit (partial hours)
    details: str | None = None  # SkuPriceDetails


def _vm(sku: str, name: str, price: str, cores: int, mem: int, os: str = "Linux") -> Sku:
    details = f'{{"InstanceType":"{name}","CoreCount":{cores},"MemorySize":{mem},"OperatingSystem":"{os}"}}'
    return Sku(sku, f"{name} {os} instance hour", "Compute", price, "Hours", "Hours", 1, 1, "1", 15, details)


def _hour(sku: str, desc: str, meter: str, price: str, details: str | None = None, partial: int = 0) -> Sku:
    return Sku(sku, desc, meter, price, "Hours", "Hours", 1, 1, "1", partial, details)


@dataclass(frozen=True)
class Service:
    name: str
    category: str
    subcategory: str
    provider: int
    resource_type: str
    weight: int  # share of usage rows (0: no usage; used by adjustments)
    resources: int  # resource pool per 50k rows
    location: int  # 0 global, 1 regional, 2 zonal
    daily: bool  # daily charge periods instead of hourly
    per_resource: bool  # a resource always bills one SKU (its instance type)
    spot: bool  # some usage is spot-priced (PricingCategory Dynamic)
    id_template: str  # {a} account part, {r} region, {z} zone, {e} environment, {x} hex
    name_template: str
    skus: tuple[Sku, ...] = ()


_AZ = "{a}/resourcegroups/rg-{e}-{r}/providers/microsoft."
_GCP = "//{s}.googleapis.com/projects/{a}/"
# fmt: off
SERVICES: list[Service] = [
    Service("AmazonEC2", "Compute", "Virtual Machines", 0, "EC2 Instance", 16, 60, 2, False, True, True,
            "arn:aws:ec2:{r}:{a}:instance/i-0{x}", "{e}-app-{x}", (
                _vm("8XKTQ2M4CEUP5HRV", "m6i.large", "0.096", 2, 8),
                _vm("Q9FJ6WBZ3N7T2YPD", "c6i.xlarge", "0.17", 4, 8),
                _vm("R5TGH8VJ2KM4X9CE", "r6i.2xlarge", "0.504", 8, 64),
                _vm("T3MD7AZ6QW2LK8PB", "t3.medium", "0.0416", 2, 4),
                _vm("G5XL4NQ8RT6VB2MJ", "g5.xlarge", "1.006", 4, 16))),
    Service("AmazonS3", "Storage", "Object Storage", 0, "S3 Bucket", 6, 20, 1, True, False, False,
            "arn:aws:s3:::examplecorp-{e}-{x}", "examplecorp-{e}-{x}", (
                Sku("WP9M4FJ7DKQ2N8TA", "S3 Standard storage", "Storage", "0.023", "GB-Months", "GB-Months", 1,
                    20000, "0.0125", 0, '{"StorageClass":"Standard","Redundancy":"Regional"}'),
                Sku("YH2C8XR5LP3G7VBE", "S3 PUT, COPY, POST requests", "Requests", "0.005", "1000 Requests",
                    "Requests", 1000, 4000, "0.25"))),
    Service("AmazonRDS", "Databases", "Relational Databases", 0, "DB Instance", 6, 10, 2, False, True, False,
            "arn:aws:rds:{r}:{a}:db:{e}-db-{x}", "{e}-db-{x}", (
                _hour("B7QK3RZ9MX5T2WNH", "db.r6g.large PostgreSQL instance hour", "Database", "0.225",
                      '{"InstanceType":"db.r6g.large","CoreCount":2,"MemorySize":16,"x_Engine":"PostgreSQL"}', 5),
                _hour("D4NP8VC2JF6L3QXS", "db.m6g.xlarge MySQL instance hour", "Database", "0.312",
                      '{"InstanceType":"db.m6g.xlarge","CoreCount":4,"MemorySize":16,"x_Engine":"MySQL"}', 5))),
    Service("AWSLambda", "Compute", "Serverless Compute", 0, "Lambda Function", 4, 40, 1, False, False, False,
            "arn:aws:lambda:{r}:{a}:function:{e}-fn-{x}", "{e}-fn-{x}", (
                Sku("L6ZB2TX9QH4M7CKF", "Lambda duration, x86", "Duration", "0.00001667", "GB-Seconds",
                    "GB-Seconds", 1, 90000, "0.5"),
                Sku("K3VW8PJ5NR2D9GYA", "Lambda requests", "Requests", "0.0000002", "Requests", "Requests", 1,
                    250000, "1"))),
    Service("AmazonDynamoDB", "Databases", "NoSQL Databases", 0, "DynamoDB Table", 3, 10, 1, False, False, False,
            "arn:aws:dynamodb:{r}:{a}:table/{e}-table-{x}", "{e}-table-{x}", (
                Sku("N8FH3QK6TB9W2ZLD", "DynamoDB write request units", "Requests", "0.00000125",
                    "Write Request Units", "Write Request Units", 1, 400000, "1"),
                Sku("P2XR7MC4VJ8L5GTE", "DynamoDB read request units", "Requests", "0.00000025",
                    "Read Request Units", "Read Request Units", 1, 900000, "1"))),
    Service("AmazonCloudFront", "Networking", "Content Delivery", 0, "Distribution", 3, 4, 0, False, False, False,
            "arn:aws:cloudfront::{a}:distribution/E{x}", "E{x}", (
                Sku("C9TQ5LW2HX7N4RMB", "CloudFront data transfer out to internet", "Data Transfer", "0.085",
                    "GB", "GB", 1, 40000, "0.01"),)),
    Service("AmazonEKS", "Compute", "Containers", 0, "EKS Cluster", 2, 2, 1, False, True, False,
            "arn:aws:eks:{r}:{a}:cluster/{e}-eks-{x}", "{e}-eks-{x}", (
                _hour("E2KS6JH9PQ3V8WNC", "EKS cluster hour", "Compute", "0.10"),)),
    Service("AmazonCloudWatch", "Management and Governance", "Observability", 0, "Log Group", 3, 15, 1, True,
            False, False, "arn:aws:logs:{r}:{a}:log-group:/{e}/app-{x}", "/{e}/app-{x}", (
                Sku("M7CW4LG2XT9K5PRH", "CloudWatch Logs ingestion", "Data Ingestion", "0.50", "GB", "GB", 1, 3000,
                    "0.01"),)),
    Service("AWS Support (Business)", "Management and Governance", "Support", 0, "Support Plan", 0, 0, 0, True,
            False, False, "", ""),
    Service("Virtual Machines", "Compute", "Virtual Machines", 1, "Virtual machine", 14, 50, 1, False, True, False,
            _AZ + "compute/virtualmachines/vm-{e}-{x}", "vm-{e}-{x}", (
                _vm("DZH318Z0BQ4L", "Standard_D4s_v5", "0.192", 4, 16),
                _vm("DZH318Z0BPVW", "Standard_E8s_v5", "0.504", 8, 64),
                _vm("DZH318Z0BQ5S", "Standard_B2ms", "0.0832", 2, 8),
                _vm("DZH318Z0BQ1C", "Standard_F8s_v2", "0.338", 8, 16, "Windows"))),
    Service("Azure Blob Storage", "Storage", "Object Storage", 1, "Storage account", 5, 15, 1, True, False, False,
            _AZ + "storage/storageaccounts/st{e}{x}", "st{e}{x}", (
                Sku("DZH318Z0BNVX", "Hot LRS data stored", "Storage", "0.0184", "GB-Months", "GB-Months", 1,
                    30000, "0.0125", 0, '{"StorageClass":"Hot","Redundancy":"Local"}'),
                Sku("DZH318Z0BNW2", "Hot LRS write operations", "Transactions", "0.055", "10000 Transactions",
                    "Transactions", 10000, 800, "0.25"))),
    Service("Azure SQL Database", "Databases", "Relational Databases", 1, "SQL database", 5, 8, 1, False, True,
            False, _AZ + "sql/servers/sql-{e}-{x}/databases/db-{x}", "db-{x}", (
                _hour("DZH318Z0BQ9T", "General Purpose Gen5 4 vCore hour", "vCore", "1.0088",
                      '{"CoreCount":4,"x_Tier":"GeneralPurpose"}', 5),
                _hour("DZH318Z0BQ9R", "General Purpose Gen5 2 vCore hour", "vCore", "0.5044",
                      '{"CoreCount":2,"x_Tier":"GeneralPurpose"}', 5))),
    Service("Azure Kubernetes Service", "Compute", "Containers", 1, "Managed cluster", 2, 2, 1, False, True, False,
            _AZ + "containerservice/managedclusters/aks-{e}-{x}", "aks-{e}-{x}", (
                _hour("DZH318Z0CSX2", "Standard tier cluster hour", "Uptime SLA", "0.10"),)),
    Service("Azure Functions", "Compute", "Serverless Compute", 1, "Function app", 2, 12, 1, False, False, False,
            _AZ + "web/sites/func-{e}-{x}", "func-{e}-{x}", (
                Sku("DZH318Z0BPXL", "Functions execution time", "Execution Time", "0.000016", "GB-Seconds",
                    "GB-Seconds", 1, 60000, "0.5"),)),
    Service("Azure Cosmos DB", "Databases", "NoSQL Databases", 1, "Azure Cosmos DB account", 3, 5, 1, False, True,
            False, _AZ + "documentdb/databaseaccounts/cosmos-{e}-{x}", "cosmos-{e}-{x}", (
                _hour("DZH318Z0BQ2K", "Provisioned throughput 400 RU/s hour", "Throughput", "0.032"),)),
    Service("Azure Monitor", "Management and Governance", "Observability", 1, "Log Analytics workspace", 2, 4, 1,
            True, False, False, _AZ + "operationalinsights/workspaces/log-{e}-{x}", "log-{e}-{x}", (
                Sku("DZH318Z0BP4M", "Analytics logs data ingestion", "Data Ingestion", "2.30", "GB", "GB", 1, 2000,
                    "0.01"),)),
    Service("Azure OpenAI", "AI and Machine Learning", "Generative AI", 1, "Azure OpenAI account", 3, 3, 1, False,
            False, False, _AZ + "cognitiveservices/accounts/oai-{e}-{x}", "oai-{e}-{x}", (
                Sku("DZH318Z0CX7A", "gpt-4o input tokens", "Input Tokens", "0.0025", "1000 Tokens", "Tokens", 1000,
                    5000, "1", 0, '{"x_Model":"gpt-4o","x_Direction":"Input"}'),
                Sku("DZH318Z0CX7B", "gpt-4o output tokens", "Output Tokens", "0.01", "1000 Tokens", "Tokens", 1000,
                    1500, "1", 0, '{"x_Model":"gpt-4o","x_Direction":"Output"}'))),
    Service("Azure Support", "Management and Governance", "Support", 1, "Support Plan", 0, 0, 0, True, False, False,
            "", ""),
    Service("Compute Engine", "Compute", "Virtual Machines", 2, "Compute Engine instance", 10, 40, 2, False, True,
            False, _GCP.replace("{s}", "compute") + "zones/{z}/instances/{e}-vm-{x}", "{e}-vm-{x}", (
                _vm("CP-N2-STD-4", "n2-standard-4", "0.194236", 4, 16),
                _vm("CP-E2-MEDIUM", "e2-medium", "0.033503", 2, 4),
                _vm("CP-C3-STD-8", "c3-standard-8", "0.40112", 8, 32))),
    Service("Cloud Storage", "Storage", "Object Storage", 2, "Bucket", 4, 15, 1, True, False, False,
            "//storage.googleapis.com/projects/_/buckets/{a}-{x}", "{a}-{x}", (
                Sku("E3D1-7C2F-95B4", "Standard storage", "Storage", "0.020", "GiB-Months", "GiB-Months", 1, 25000,
                    "0.0125", 0, '{"StorageClass":"Standard","Redundancy":"Regional"}'),
                Sku("A1F8-22C4-0E71", "Class A operations", "Operations", "0.005", "1000 Requests", "Requests", 1000,
                    3000, "0.25"))),
    Service("BigQuery", "Databases", "Data Warehouses", 2, "Dataset", 4, 6, 1, False, False, False,
            _GCP.replace("{s}", "bigquery") + "datasets/{e}_ds_{x}", "{e}_ds_{x}", (
                Sku("24E6-581D-38E5", "Analysis (on-demand)", "Analysis", "6.25", "TiB", "TiB", 1, 20000, "0.0001"),
                Sku("9B1C-77A2-4D03", "Active logical storage", "Storage", "0.02", "GiB-Months", "GiB-Months", 1,
                    40000, "0.0125"))),
    Service("Cloud SQL", "Databases", "Relational Databases", 2, "Cloud SQL instance", 3, 6, 2, False, True, False,
            _GCP.replace("{s}", "cloudsql") + "instances/{e}-sql-{x}", "{e}-sql-{x}", (
                _hour("7F2A-5C1B-E903", "Cloud SQL for PostgreSQL 4 vCPU 16 GB", "Compute", "0.3876",
                      '{"CoreCount":4,"MemorySize":16,"x_Engine":"PostgreSQL"}', 5),)),
    Service("Google Kubernetes Engine", "Compute", "Containers", 2, "Cluster", 1, 2, 1, False, True, False,
            _GCP.replace("{s}", "container") + "locations/{r}/clusters/{e}-gke-{x}", "{e}-gke-{x}", (
                _hour("CCD8-9BF1-090E", "Regional cluster management fee", "Cluster", "0.10"),)),
    Service("Cloud Run", "Compute", "Serverless Compute", 2, "Cloud Run service", 2, 20, 1, False, False, False,
            _GCP.replace("{s}", "run") + "locations/{r}/services/{e}-run-{x}", "{e}-run-{x}", (
                Sku("8D4E-02F7-A1B6", "CPU allocation time", "CPU", "0.000024", "vCPU-Seconds", "vCPU-Seconds", 1,
                    50000, "1"),
                Sku("5A9C-3E18-F042", "Memory allocation time", "Memory", "0.0000025", "GiB-Seconds",
                    "GiB-Seconds", 1, 90000, "1"))),
    Service("Vertex AI", "AI and Machine Learning", "Generative AI", 2, "Vertex AI endpoint", 2, 3, 1, False, False,
            False, _GCP.replace("{s}", "aiplatform") + "locations/{r}/endpoints/{x}", "endpoint-{x}", (
                Sku("F1C2-88A0-7B3D", "Gemini 1.5 Pro input tokens", "Input Tokens", "0.00125", "1000 Tokens",
                    "Tokens", 1000, 6000, "1", 0, '{"x_Model":"gemini-1.5-pro","x_Direction":"Input"}'),)),
    Service("Cloud Logging", "Management and Governance", "Observability", 2, "Log bucket", 1, 4, 1, True, False,
            False, _GCP.replace("{s}", "logging") + "locations/global/buckets/{e}-logs-{x}", "{e}-logs-{x}", (
                Sku("143F-A1A4-8B2C", "Log storage", "Storage", "0.50", "GiB", "GiB", 1, 2500, "0.01"),)),
    Service("Google Cloud Support", "Management and Governance", "Support", 2, "Support Plan", 0, 0, 0, True, False,
            False, "", ""),
]
# fmt: on


@dataclass(frozen=True)
class Commitment:
    """A commitment discount (savings plan, reservation, CUD); also a Contract Commitment row."""

    id: str
    name: str
    category: str  # Spend | Usage
    type: str
    resource_type: str
    resource_name: str
    billing_account: int
    sub_account: int
    service: str
    region: str | None  # reservations are regional
    instance_sku: str | None  # reservations cover one instance type
    rate: str | None  # reservation: effective hourly rate per instance
    units: int  # reservation: instances reserved
    spend_factor: str | None  # savings plan: effective cost = list cost × factor
    hourly: str | None  # savings plan: commitment per hour
    frequency: str  # Recurring (monthly fee) | One-Time (all upfront, bought on the first day)
    cover_pct: int  # share of eligible usage it covers
    contract_id: str
    months_before_start: int  # the term starts this many months before the demo's first month
    payment: str


# fmt: off
COMMITMENTS: list[Commitment] = [
    Commitment("arn:aws:savingsplans::556677889900:savingsplan/3f2a7c19-5b0e-4d61-9e8a-2c4b1d7f6a90",
               "ComputeSavingsPlans-3yr-NoUpfront", "Spend", "Savings Plan", "Savings Plan", "savingsplan-3f2a7c19",
               0, 4, "AmazonEC2", None, None, None, 0, "0.72", "12.50", "Recurring", 35,
               "AWS-SP-AGREEMENT-3f2a7c19", 4, "No Upfront"),
    Commitment("arn:aws:ec2:us-east-1:112233445566:reserved-instances/6b1f0e3c-2a7d-4c95-8e14-7d3b9a0c5f21",
               "EC2 RI m6i.large us-east-1 3yr NoUpfront", "Usage", "Reserved Instance", "Reserved Instance",
               "ri-6b1f0e3c", 0, 0, "AmazonEC2", "us-east-1", "8XKTQ2M4CEUP5HRV", "0.0605", 8, None, None,
               "Recurring", 60, "AWS-RI-AGREEMENT-6b1f0e3c", 2, "No Upfront"),
    Commitment("/providers/microsoft.capacity/reservationorders/9d2e4f61-3b7a-4c08-a1e5-6f82d0b93c47/"
               "reservations/1a7c5e92-04d3-4b6f-8e21-c9f3a7d0b584", "VM RI Standard_D4s_v5 East US 3 Years",
               "Usage", "Reservation", "Reservation", "ri-d4sv5-eastus", 1, 5, "Virtual Machines", "eastus",
               "DZH318Z0BQ4L", "0.0797", 6, None, None, "Recurring", 60, "MS-RES-ORDER-9d2e4f61", 3, "Monthly"),
    Commitment("/providers/microsoft.billingbenefits/savingsplanorders/2e8d41c7-95a3-4f0b-b7d6-13c0e8a94f25/"
               "savingsplans/7b3f09d2-6c1e-4a85-9d47-e05a2c8b13f6", "Compute Savings Plan 3 Years EUR", "Spend",
               "Savings Plan", "Savings plan", "sp-compute-eu", 2, 8, "Virtual Machines", None, None, None, 0,
               "0.70", "1.85", "One-Time", 40, "MS-SP-ORDER-2e8d41c7", 0, "All Upfront"),
    Commitment("//compute.googleapis.com/projects/examplecorp-prod-web/global/commitments/cud-flex-3yr-01",
               "Compute flexible CUD 3 year", "Spend", "Committed Use Discount", "Commitment", "cud-flex-3yr-01",
               3, 11, "Compute Engine", None, None, None, 0, "0.54", "6.00", "Recurring", 30,
               "GCP-CUD-AGREEMENT-01", 1, "Monthly"),
]
# Negotiated spend commitments: Contract Commitment rows after the commitment discounts, referenced by
# the ContractApplied of the billing account's on-demand charges.
# contract id, commitment id, type, description, total, currency, months before start
NEGOTIATED = [
    ("AWS-EDP-2025-483920175526", "AWS-EDP-2025-483920175526-MIN-SPEND", "Enterprise Discount Program",
     "AWS EDP minimum spend, 3 years", "3600000.00", "USD", 6),
    ("MACC-2025-EXAMPLECORP-US", "MACC-2025-EXAMPLECORP-US-COMMIT", "Microsoft Azure Consumption Commitment",
     "Azure consumption commitment, US billing profile, 3 years", "1500000.00", "USD", 3),
    ("MACC-2026-EXAMPLECORP-EU", "MACC-2026-EXAMPLECORP-EU-COMMIT", "Microsoft Azure Consumption Commitment",
     "Azure consumption commitment, EU billing profile, 3 years", "900000.00", "EUR", 0),
]
# Kubernetes clusters whose node hours are split over namespaces (split cost allocation): cluster id,
# billing account, sub account, service, instance sku, region, zone, vCPUs per node, node id, node name
CLUSTERS = [
    ("arn:aws:eks:us-east-1:112233445566:cluster/prod-eks", 0, 0, "AmazonEC2", "8XKTQ2M4CEUP5HRV", "us-east-1",
     "us-east-1b", 2, "arn:aws:ec2:us-east-1:112233445566:instance/i-0e5c{n}a7d3b1f9", "prod-eks-node-{n}"),
    (_SUB + "6e2d8b40-1c9a-4f73-a5e8-c3b7f0142d96/resourcegroups/rg-aks-prod/providers/"
     "microsoft.containerservice/managedclusters/aks-prod-weu", 2, 8, "Virtual Machines", "DZH318Z0BQ4L",
     "westeurope", None, 4, _SUB + "6e2d8b40-1c9a-4f73-a5e8-c3b7f0142d96/resourcegroups/mc_rg-aks-prod_aks-prod-weu"
     "_westeurope/providers/microsoft.compute/virtualmachinescalesets/aks-nodepool1-31841763-vmss/virtualmachines/{n}",
     "aks-nodepool1-31841763-vmss_{n}"),
    ("//container.googleapis.com/projects/examplecorp-prod-web/locations/europe-west1/clusters/gke-prod-ew1", 3, 11,
     "Compute Engine", "CP-N2-STD-4", "europe-west1", "europe-west1-c", 4,
     "//compute.googleapis.com/projects/examplecorp-prod-web/zones/europe-west1-c/instances/"
     "gke-prod-ew1-default-pool-7c1e{n}", "gke-prod-ew1-default-pool-7c1e{n}"),
]
NODES_PER_CLUSTER = 16
NAMESPACES = [("payments", "team-payments"), ("checkout", "team-web"), ("search", "team-search"),
              ("data-pipeline", "team-data"), ("ml-inference", "team-ml"), ("observability", "team-platform")]
# fmt: on
TEAMS = ["team-platform", "team-payments", "team-data", "team-web", "team-ml", "team-search"]
COST_CENTERS = ["cc-1000", "cc-1042", "cc-2087", "cc-3110", "cc-4200"]
APPS = ["checkout", "catalog", "search", "analytics", "recommendations", "identity", "billing", "cms"]
ALLOCATION_METHOD = "k8s-namespace-cpu-requests"
INVOICE_IDS = ["2039{ym}", "G0{ym}17", "E0{ym}42", "5{ym}093"]  # per billing account, {ym} = YYYYMM

# -- derived lookups ----------------------------------------------------------------------------

SERVICE_INDEX = {s.name: i for i, s in enumerate(SERVICES)}
REGION_INDEX = {r[0]: i for i, r in enumerate(REGIONS)}


def _commitment_sku(c: Commitment) -> Sku:
    """The SKU a commitment's purchase rows bill (and a savings plan's unused rows)."""
    currency = BILLING_ACCOUNTS[c.billing_account][3]
    term = '{"x_PurchaseTerm":"3yr","x_PaymentOption":"' + c.payment + '"}'
    if c.category == "Spend":
        return Sku(f"COMMIT-{c.resource_name}", c.name, "Commitment", "1", currency, currency, 1, 1, "1", 0, term)
    assert c.rate is not None
    return Sku(f"COMMIT-{c.resource_name}", c.name, "Commitment", c.rate, "Hours", "Hours", 1, 1, "1", 0, term)


SKUS: list[Sku] = [k for s in SERVICES for k in s.skus] + [_commitment_sku(c) for c in COMMITMENTS]
SKU_INDEX = {k.id: i for i, k in enumerate(SKUS)}


def account_sub_accounts(account: int) -> tuple[int, int]:
    """First index and count of the billing account's sub accounts (they are contiguous)."""
    idx = [i for i, s in enumerate(SUB_ACCOUNTS) if s[3] == account]
    assert idx == list(range(idx[0], idx[0] + len(idx)))
    return idx[0], len(idx)


def eligibility() -> list[int]:
    """The commitment (1-based; 0: none) covering usage of (billing account, sku, region); RIs win over SPs."""
    table = [0] * (len(BILLING_ACCOUNTS) * len(SKUS) * len(REGIONS))
    for ci in sorted(range(len(COMMITMENTS)), key=lambda i: COMMITMENTS[i].category == "Usage"):
        c = COMMITMENTS[ci]
        for sku_index, sku in enumerate(SKUS):
            if sku not in SERVICES[SERVICE_INDEX[c.service]].skus or c.instance_sku not in (None, sku.id):
                continue
            for rg, region in enumerate(REGIONS):
                if c.region in (None, region[0]):
                    table[(c.billing_account * len(SKUS) + sku_index) * len(REGIONS) + rg] = ci + 1
    return table


def tax_pairs() -> list[tuple[int, int]]:
    """(billing account, service) pairs with a Tax row each month: every usage service of the provider."""
    return [
        (b, si)
        for b, ba in enumerate(BILLING_ACCOUNTS)
        for si, s in enumerate(SERVICES)
        if s.provider == ba[4] and s.weight > 0
    ]


def eur(price: str) -> Decimal:
    return (D(price) * EUR_PER_USD).quantize(D("1e-8"), rounding=ROUND_HALF_EVEN)


# -- rendering reference data as DuckDB macros -----------------------------------------------------


def lit(value: Any, sql_type: str) -> str:
    """A typed SQL literal (reference data and generated numbers only: no user input reaches this)."""
    if value is None:
        return f"CAST(NULL AS {sql_type})"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, list):
        inner = sql_type.removesuffix("[]")
        return f"CAST([{', '.join(lit(v, inner) for v in value)}] AS {sql_type})"
    if isinstance(value, int):
        return f"CAST({value} AS {sql_type})"
    if isinstance(value, datetime):
        return f"TIMESTAMP '{value:%Y-%m-%d %H:%M:%S}'"
    return f"CAST('{str(value).replace(chr(39), chr(39) * 2)}' AS {sql_type})"


def struct_list(fields: str, rows: list[tuple[Any, ...]]) -> str:
    """A constant list of structs; ``fields`` is "name TYPE, name TYPE, ..." (no space inside a type)."""
    spec = [tuple(f.split()) for f in fields.split(", ")]
    items = ("{" + ", ".join(f"'{n}': {lit(v, t)}" for (n, t), v in zip(spec, row, strict=True)) + "}" for row in rows)
    return "[" + ",\n ".join(items) + "]"


PRICE = "DECIMAL(18,8)"
FACTOR = "DECIMAL(4,2)"


def _nodes() -> list[tuple[Any, ...]]:
    nodes = []
    for cl, ba, sa, svc, sku, region, zone, vcpu, node_id, node_name in CLUSTERS:
        tags = PROVIDERS[BILLING_ACCOUNTS[ba][4]][1]
        for old, new in (("{env}", "prod"), ("{cc}", "cc-1000"), ("{team}", "team-platform"), ("{app}", "k8s")):
            tags = tags.replace(old, new)
        for n in range(NODES_PER_CLUSTER):
            ids = (node_id.replace("{n}", f"{n:04x}"), node_name.replace("{n}", f"{n:04x}"))
            nodes.append((cl, ba, sa, SERVICE_INDEX[svc], SKU_INDEX[sku], REGION_INDEX[region], zone, vcpu, *ids, tags))
    return nodes


def macros() -> list[str]:
    """Statements defining the reference data as constant lists, read through macros ``d_*()``."""
    sku_lo = {i: sum(len(s.skus) for s in SERVICES[:i]) for i in range(len(SERVICES))}
    currency = {i: BILLING_ACCOUNTS[c.billing_account][3] for i, c in enumerate(COMMITMENTS)}
    # fmt: off
    lists = {
        "d_prov": struct_list("name VARCHAR, bas INTEGER[], tags VARCHAR",
                              [(name, [b for b, ba in enumerate(BILLING_ACCOUNTS) if ba[4] == p], tags)
                               for p, (name, tags) in enumerate(PROVIDERS)]),
        "d_ba": struct_list(
            f"id VARCHAR, name VARCHAR, type VARCHAR, cur VARCHAR, p INTEGER, cf {FACTOR}, tax DECIMAL(6,4), "
            "tax_name VARCHAR, cc INTEGER, credit_sis INTEGER[], adj_si INTEGER, sa_lo INTEGER, sa_n INTEGER",
            [(*b[:5], D(b[5]), D(b[6]), b[7], b[8], [SERVICE_INDEX[s] for s in b[9]], SERVICE_INDEX[b[10]],
              *account_sub_accounts(i)) for i, b in enumerate(BILLING_ACCOUNTS)]),
        "d_sa": struct_list("id VARCHAR, name VARCHAR, type VARCHAR, ba INTEGER, env VARCHAR, rid VARCHAR, "
                            "rgs INTEGER[]", [(*s[:6], [REGION_INDEX[r] for r in s[6]]) for s in SUB_ACCOUNTS]),
        "d_rg": struct_list("id VARCHAR, name VARCHAR, azs VARCHAR[]", REGIONS),
        "d_svc": struct_list(
            "name VARCHAR, cat VARCHAR, sub VARCHAR, p INTEGER, rtype VARCHAR, n_res INTEGER, loc INTEGER, "
            "daily BOOLEAN, sku_lo INTEGER, sku_n INTEGER, per_res BOOLEAN, spot BOOLEAN, rid VARCHAR, rname VARCHAR",
            [(s.name, s.category, s.subcategory, s.provider, s.resource_type, s.resources, s.location, s.daily,
              sku_lo[i], len(s.skus), s.per_resource, s.spot, s.id_template, s.name_template)
             for i, s in enumerate(SERVICES)]),
        "d_sku": struct_list(
            f"id VARCHAR, desc VARCHAR, meter VARCHAR, p_usd {PRICE}, p_eur {PRICE}, punit VARCHAR, cunit VARCHAR, "
            "cfac DECIMAL(18,0), span INTEGER, step DECIMAL(18,4), part INTEGER, details VARCHAR",
            [(k.id, k.desc, k.meter, D(k.price_usd), D(k.price_usd) if k.meter == "Commitment" else eur(k.price_usd),
              k.unit, k.consumed_unit, D(k.consumed_factor), k.span, D(k.step), k.partial_pct, k.details)
             for k in SKUS]),
        "d_commit": struct_list(
            "id VARCHAR, name VARCHAR, cat VARCHAR, type VARCHAR, rtype VARCHAR, rname VARCHAR, ba INTEGER, "
            f"sa INTEGER, si INTEGER, rg INTEGER, csku INTEGER, isku INTEGER, rate {PRICE}, units INTEGER, "
            f"spf {FACTOR}, hourly DECIMAL(18,2), cover INTEGER, unit VARCHAR",
            [(c.id, c.name, c.category, c.type, c.resource_type, c.resource_name, c.billing_account, c.sub_account,
              SERVICE_INDEX[c.service], REGION_INDEX.get(c.region or ""), SKU_INDEX[f"COMMIT-{c.resource_name}"],
              SKU_INDEX.get(c.instance_sku or ""), D(c.rate or 0), c.units, D(c.spend_factor or 0),
              D(c.hourly or 0), c.cover_pct, "Hours" if c.category == "Usage" else currency[i])
             for i, c in enumerate(COMMITMENTS)]),
        "d_cc": struct_list("contract VARCHAR, id VARCHAR",
                            [(c.contract_id, c.id) for c in COMMITMENTS] + [(n[0], n[1]) for n in NEGOTIATED]),
        "d_node": struct_list(
            "cluster VARCHAR, ba INTEGER, sa INTEGER, si INTEGER, sku INTEGER, rg INTEGER, az VARCHAR, vcpu INTEGER, "
            "rid VARCHAR, rname VARCHAR, tags VARCHAR", _nodes()),
        "d_ns": struct_list("name VARCHAR, team VARCHAR", NAMESPACES),
        "d_taxpairs": struct_list("ba INTEGER, si INTEGER", tax_pairs()),
        "d_wsvc": lit([i for i, s in enumerate(SERVICES) for _ in range(s.weight)], "INTEGER[]"),
        "d_elig": lit(eligibility(), "INTEGER[]"),
        "d_teams": lit(TEAMS, "VARCHAR[]"),
        "d_ccs": lit(COST_CENTERS, "VARCHAR[]"),
        "d_apps": lit(APPS, "VARCHAR[]"),
    }
    # fmt: on
    # Held in variables: a macro would re-bind its literal list at every use, which costs more than
    # generating thousands of rows.
    statements = [
        s
        for name, body in lists.items()
        for s in (f"SET VARIABLE {name} = {body}", f"CREATE OR REPLACE MACRO {name}() AS getvariable('{name}')")
    ]
    # Exact decimal text for JSON numbers, without trailing zeros (0.125000 -> 0.125, 2.000 -> 2).
    statements.append(
        "CREATE OR REPLACE MACRO dectxt(x) AS CASE WHEN contains(CAST(x AS VARCHAR), '.') "
        "THEN rtrim(rtrim(CAST(x AS VARCHAR), '0'), '.') ELSE CAST(x AS VARCHAR) END"
    )
    return statements


# -- the internal row shape shared by every kind of row ----------------------------------------

COST = "DECIMAL(38,16)"  # values never carry more than 14 places: casting to it never rounds
QTY = "DECIMAL(38,16)"  # a savings plan purchase's quantity is a sum of costs
# fmt: off
INTERNAL: dict[str, str] = {
    "ba": "INTEGER", "sa": "INTEGER", "si": "INTEGER", "sku": "INTEGER", "rg": "INTEGER", "az": "VARCHAR",
    "cps": "TIMESTAMP", "cpe": "TIMESTAMP", "cat": "VARCHAR", "freq": "VARCHAR", "pcat": "VARCHAR",
    "descr": "VARCHAR", "spot": "BOOLEAN", "q": QTY, "p": PRICE, "pc": "DECIMAL(18,10)", "cq": QTY, "lc": COST,
    "cc": COST, "billed": COST, "eff": COST, "cidx": "INTEGER", "cstatus": "VARCHAR", "cdq": COST, "rid": "VARCHAR",
    "rname": "VARCHAR", "rtype": "VARCHAR", "tags": "VARCHAR", "am_id": "VARCHAR", "ar_id": "VARCHAR",
    "ar_name": "VARCHAR", "a_tags": "VARCHAR", "a_details": "VARCHAR", "ca_cc": "INTEGER", "ca_cost": COST,
    "ca_qty": QTY, "ca_unit": "VARCHAR",
}
# fmt: on


def internal_select(exprs: dict[str, str], source: str, order_by: str = "") -> str:
    """One kind of row in the internal shape; columns not given are NULL."""
    unknown = set(exprs) - set(INTERNAL)
    assert not unknown, unknown
    cols = ",\n  ".join(f"CAST({exprs.get(n, 'NULL')} AS {t}) AS {n}" for n, t in INTERNAL.items())
    return f"SELECT\n  {cols}\nFROM {source}" + (f"\nORDER BY {order_by}" if order_by else "")


@dataclass(frozen=True)
class Month:
    """One billing period to generate, and how many rows of each kind it gets."""

    index: int
    seed: int
    start: datetime
    end: datetime
    usage: int
    unused: int
    alloc: int
    active: list[int]  # commitments active this month
    purchases: list[tuple[int, str, Decimal | None]]  # (commitment, frequency, upfront amount) bought this month
    invoices: list[str]  # InvoiceId per billing account
    resource_scale: int  # resource pools grow with the row count

    @property
    def hours(self) -> int:
        return int((self.end - self.start).total_seconds()) // 3600

    @property
    def days(self) -> int:
        return self.hours // 24

    @property
    def fixed(self) -> int:
        """Purchases, taxes, credits and adjustments."""
        return len(self.purchases) + len(tax_pairs()) + 2 * len(BILLING_ACCOUNTS)

    def h(self, *parts: str) -> str:
        """SQL: a 64-bit hash of the seed, the month and ``parts``."""
        return f"hash({self.seed}, {self.index}, {', '.join(parts)})"

    def at_hour(self, hour: str) -> str:
        return f"TIMESTAMP '{self.start:%Y-%m-%d}' + to_hours(CAST({hour} AS BIGINT))"


def _price(ba: str, sku: str) -> str:
    return f"CAST(CASE WHEN {ba}.cur = 'EUR' THEN {sku}.p_eur ELSE {sku}.p_usd END AS {PRICE})"


def _frac(h: str) -> str:
    """SQL: a decimal in [0.0001, 0.9999] with 4 places, from a hash."""
    return f"(CAST(1 + {h} % 9999 AS DECIMAL(18,0)) * CAST('0.0001' AS DECIMAL(5,4)))"


def _pick(lst: str, h: str) -> str:
    return f"{lst}[1 + CAST(({h}) % len({lst}) AS INTEGER)]"


def _subst(template: str, pairs: dict[str, str]) -> str:
    expr = template
    for key, value in pairs.items():
        expr = f"replace({expr}, '{{{key}}}', {value})"
    return expr


def usage_sql(m: Month) -> str:
    """Metered usage: on-demand, spot, and commitment-covered (CommitmentDiscountStatus Used).

    The first rows of a month go one to each (billing account, service) pair, uncovered, so every
    pair has billed usage each month (its Tax row and any SLA credit are then never zero). The
    others pick a service by weight, then a billing account of its provider, then a resource.
    """
    nsku, nrg, npairs, day = len(SKUS), len(REGIONS), len(tax_pairs()), f"TIMESTAMP '{m.start:%Y-%m-%d}'"
    base = f"""(
WITH u1 AS (
  SELECT k, {m.h("k", "'res'")} AS hr, {m.h("k", "'qty'")} AS hq, {m.h("k", "'time'")} AS ht, {m.h("k", "'mix'")} AS hm,
    CASE WHEN k < {npairs} THEN d_taxpairs()[k + 1].si ELSE {_pick("d_wsvc()", m.h("k", "'svc'"))} END AS si
  FROM range({m.usage}) t(k)
), u2 AS (
  SELECT *, d_svc()[si + 1] AS v,
    CASE WHEN k < {npairs} THEN d_taxpairs()[k + 1].ba
         ELSE {_pick("d_prov()[d_svc()[si + 1].p + 1].bas", "hr >> 48")} END AS ba
  FROM u1
), u3 AS (
  SELECT *, d_prov()[v.p + 1] AS pv, d_ba()[ba + 1] AS b, hash(si, ba, hr % (v.n_res * {m.resource_scale})) AS rh
  FROM u2
), u4 AS (
  SELECT *, b.sa_lo + CAST(rh % b.sa_n AS INTEGER) AS sa,
    v.sku_lo + CAST(CASE WHEN v.per_res THEN rh >> 16 ELSE hm >> 8 END % v.sku_n AS INTEGER) AS sku
  FROM u3
), u5 AS (
  SELECT *, d_sa()[sa + 1] AS s, d_sku()[sku + 1] AS u FROM u4
), u6 AS (
  SELECT *, CASE WHEN v.loc > 0 THEN {_pick("s.rgs", "rh >> 8")} END AS rg FROM u5
), u7 AS (
  SELECT *, d_rg()[rg + 1] AS g,
    CASE WHEN rg IS NOT NULL AND k >= {npairs} THEN d_elig()[1 + (ba * {nsku} + sku) * {nrg} + rg] ELSE 0 END AS e
  FROM u6
), u8 AS (
  SELECT *, CASE WHEN e > 0 AND (hm >> 20) % 100 < d_commit()[e].cover THEN e - 1 END AS cidx FROM u7
), u9 AS (
  SELECT *, d_commit()[cidx + 1] AS c, cidx IS NULL AND v.spot AND (hm >> 40) % 100 < 8 AS spot,
    CAST(CASE WHEN (hq >> 32) % 100 < u.part THEN {_frac("hq")}
         ELSE CAST(1 + (hq >> 8) % u.span AS DECIMAL(18,0)) * u.step END AS DECIMAL(18,6)) AS q,
    {_price("b", "u")} AS p,
    CASE WHEN v.loc = 2 AND len(g.azs) > 0 THEN {_pick("g.azs", "rh >> 40")} END AS az,
    CASE WHEN v.daily THEN {day} + to_days(CAST(ht % {m.days} AS INTEGER)) ELSE {m.at_hour(f"ht % {m.hours}")} END
      AS cps
  FROM u8
), u10 AS (
  SELECT *, CAST(p * CASE WHEN spot THEN CAST('{SPOT_FACTOR}' AS {FACTOR}) ELSE b.cf END AS DECIMAL(18,10)) AS pc
  FROM u9
), u11 AS (
  SELECT *, CAST(p * q AS {COST}) AS lc, CAST(pc * q AS {COST}) AS cc FROM u10
)
SELECT *,
  CAST(CASE WHEN cidx IS NULL THEN cc WHEN c.cat = 'Usage' THEN q * c.rate ELSE lc * c.spf END AS {COST}) AS eff,
  printf('%012x', rh >> 16) AS x
FROM u11)"""
    ids = {"a": "s.rid", "r": "coalesce(g.id, '')", "z": "coalesce(az, '')", "e": "s.env", "x": "x"}
    tags = {"env": "s.env", "cc": _pick("d_ccs()", "rh >> 24"), "team": _pick("d_teams()", "rh >> 28"),
            "app": _pick("d_apps()", "rh >> 32")}  # fmt: skip
    # fmt: off
    return internal_select({
        "ba": "ba", "sa": "sa", "si": "si", "sku": "sku", "rg": "rg", "az": "az", "cps": "cps",
        "cpe": "cps + CASE WHEN v.daily THEN INTERVAL 1 DAY ELSE INTERVAL 1 HOUR END", "cat": "'Usage'",
        "freq": "'Usage-Based'",
        "pcat": "CASE WHEN cidx IS NOT NULL THEN 'Committed' WHEN spot THEN 'Dynamic' ELSE 'Standard' END",
        "descr": "u.desc || CASE WHEN cidx IS NOT NULL THEN ' (' || c.type || ')' WHEN spot THEN ' (spot)' ELSE '' END",
        "spot": "spot", "q": "q", "p": "p", "pc": "pc", "cq": "q * u.cfac", "lc": "lc", "cc": "cc",
        "billed": "CASE WHEN cidx IS NULL THEN cc ELSE 0 END", "eff": "eff", "cidx": "cidx",
        "cstatus": "CASE WHEN cidx IS NOT NULL THEN 'Used' END",
        "cdq": "CASE WHEN cidx IS NULL THEN NULL WHEN c.cat = 'Usage' THEN q ELSE eff END",
        "rid": _subst("v.rid", ids), "rname": _subst("v.rname", ids), "rtype": "v.rtype",
        "tags": f"CASE WHEN rh % 10 <> 0 THEN {_subst('pv.tags', tags)} END",
        "ca_cc": "coalesce(cidx, b.cc)",
        "ca_cost": "CASE WHEN cidx IS NULL AND b.cc IS NOT NULL THEN cc WHEN c.cat = 'Spend' THEN eff END",
        "ca_qty": "CASE WHEN c.cat = 'Usage' THEN q END", "ca_unit": "CASE WHEN c.cat = 'Usage' THEN 'Hours' END",
    }, base)
    # fmt: on


def unused_sql(m: Month) -> str:
    """Unused commitment (CommitmentDiscountStatus Unused): at most one row per commitment and hour."""
    active, n = lit(m.active, "INTEGER[]"), len(m.active)
    hour = f"({HOUR_STRIDE} * slot + {m.h('ci', chr(39) + 'off' + chr(39))} % {m.hours}) % {m.hours}"
    base = f"""(
WITH x1 AS (
  SELECT {active}[1 + k % {n}] AS ci, k // {n} AS slot, {m.h("k", "'unused'")} AS hx FROM range({m.unused}) t(k)
), x2 AS (
  SELECT *, d_commit()[ci + 1] AS c,
    {m.at_hour(hour)} AS cps
  FROM x1
), x3 AS (
  SELECT *, d_ba()[c.ba + 1] AS b, d_sku()[coalesce(c.isku, c.csku) + 1] AS u,
    CAST(CASE WHEN c.cat = 'Spend' THEN c.hourly ELSE CAST(c.units AS DECIMAL(18,0)) END * {_frac("hx")}
         AS DECIMAL(18,6)) AS q
  FROM x2
), x4 AS (
  SELECT *, {_price("b", "u")} AS p FROM x3
), x5 AS (
  SELECT *, CAST(CASE WHEN c.cat = 'Spend' THEN p ELSE p * b.cf END AS DECIMAL(18,10)) AS pc FROM x4
)
SELECT *, CAST(p * q AS {COST}) AS lc, CAST(pc * q AS {COST}) AS cc,
  CAST(CASE WHEN c.cat = 'Spend' THEN q ELSE q * c.rate END AS {COST}) AS eff
FROM x5)"""
    # fmt: off
    return internal_select({
        "ba": "c.ba", "sa": "c.sa", "si": "c.si", "sku": "coalesce(c.isku, c.csku)", "rg": "c.rg", "cps": "cps",
        "cpe": "cps + INTERVAL 1 HOUR", "cat": "'Usage'", "freq": "'Usage-Based'", "pcat": "'Committed'",
        "descr": "c.name || ' unused commitment'", "spot": "FALSE", "q": "q", "p": "p", "pc": "pc", "lc": "lc",
        "cc": "cc", "billed": "0", "eff": "eff", "cidx": "ci", "cstatus": "'Unused'",
        "cdq": "CASE WHEN c.cat = 'Spend' THEN eff ELSE q END", "rid": "c.id", "rname": "c.rname",
        "rtype": "c.rtype", "ca_cc": "ci", "ca_cost": "CASE WHEN c.cat = 'Spend' THEN eff END",
        "ca_qty": "CASE WHEN c.cat = 'Usage' THEN q END", "ca_unit": "CASE WHEN c.cat = 'Usage' THEN 'Hours' END",
    }, base)
    # fmt: on


def allocation_sql(m: Month) -> str:
    """Kubernetes node hours split over three namespaces plus idle capacity; the ratios sum to exactly 1."""
    nn = len(CLUSTERS) * NODES_PER_CLUSTER
    r = [f"(CAST(5 + {m.h('g', str(i))} % 26 AS DECIMAL(18,0)) * CAST('0.01' AS DECIMAL(3,2)))" for i in range(3)]
    hour = f"({HOUR_STRIDE} * (g // {nn}) + {m.h(chr(39) + 'alloc' + chr(39))} % {m.hours}) % {m.hours}"
    base = f"""(
WITH a1 AS (
  SELECT k // 4 AS g, CAST(k % 4 AS INTEGER) AS mbr FROM range({m.alloc}) t(k)
), a2 AS (
  SELECT *, d_node()[1 + g % {nn}] AS nd,
    {m.at_hour(hour)} AS cps,
    CAST(CASE mbr WHEN 0 THEN {r[0]} WHEN 1 THEN {r[1]} WHEN 2 THEN {r[2]} ELSE 1 - {r[0]} - {r[1]} - {r[2]} END
         AS DECIMAL(18,2)) AS ratio,
    CASE WHEN mbr < 3 THEN d_ns()[1 + CAST(({m.h("g", "'ns'")} % 6 + mbr) % 6 AS INTEGER)] END AS ns
  FROM a1
), a3 AS (
  SELECT *, d_ba()[nd.ba + 1] AS b, d_sku()[nd.sku + 1] AS u FROM a2
), a4 AS (
  SELECT *, {_price("b", "u")} AS p FROM a3
), a5 AS (
  SELECT *, CAST(p * b.cf AS DECIMAL(18,10)) AS pc FROM a4
)
SELECT *, CAST(p * ratio AS {COST}) AS lc, CAST(pc * ratio AS {COST}) AS cc FROM a5)"""
    details = (
        """'{"Elements":[{"AllocatedRatio":' || dectxt(ratio) || ',"UsageUnit":"vCPU-Hours","UsageQuantity":' """
        """|| dectxt(ratio * nd.vcpu) || '}]}'"""
    )
    # fmt: off
    return internal_select({
        "ba": "nd.ba", "sa": "nd.sa", "si": "nd.si", "sku": "nd.sku", "rg": "nd.rg", "az": "nd.az", "cps": "cps",
        "cpe": "cps + INTERVAL 1 HOUR", "cat": "'Usage'", "freq": "'Usage-Based'", "pcat": "'Standard'",
        "descr": "u.desc || CASE WHEN ns IS NULL THEN ' (idle capacity)' "
                 "ELSE ' (split to namespace ' || ns.name || ')' END",
        "spot": "FALSE", "q": "ratio", "p": "p", "pc": "pc", "cq": "ratio", "lc": "lc", "cc": "cc", "billed": "cc",
        "eff": "cc", "rid": "nd.rid", "rname": "nd.rname", "rtype": "d_svc()[nd.si + 1].rtype", "tags": "nd.tags",
        "am_id": f"'{ALLOCATION_METHOD}'",
        "ar_id": "CASE WHEN ns IS NOT NULL THEN nd.cluster || '/namespaces/' || ns.name END", "ar_name": "ns.name",
        "a_tags": """CASE WHEN ns IS NOT NULL THEN '{"k8s-namespace":"' || ns.name || '","k8s-owner":"' """
                  """|| ns.team || '"}' END""",
        "a_details": details, "ca_cc": "b.cc", "ca_cost": "CASE WHEN b.cc IS NOT NULL THEN cc END",
    }, base)
    # fmt: on


def _metered(m: Month) -> list[str]:
    return [usage_sql(m)] + ([unused_sql(m)] if m.unused else []) + ([allocation_sql(m)] if m.alloc else [])


def aggregate_sql(m: Month) -> str:
    """Table ``agg``: per-commitment and per (billing account, service) sums of the month's metered rows."""
    rows = "\nUNION ALL\n".join(_metered(m))
    return f"""CREATE OR REPLACE TABLE agg AS
SELECT grouping(cidx) AS by_account, cidx, ba, si, sum(eff) AS eff, sum(cdq) AS cdq, sum(billed) AS billed
FROM ({rows})
GROUP BY GROUPING SETS ((cidx), (ba, si))"""


def fixed_sql(m: Month) -> list[str]:
    """Statements building table ``fixed``: the month's purchases, taxes, credits and adjustments.

    Their amounts come from table ``agg``: a recurring commitment fee is exactly the amortized cost of
    its Used and Unused rows of the month, a tax is its rate on the billed cost, an SLA credit a share.
    """
    start, end = f"TIMESTAMP '{m.start:%Y-%m-%d}'", f"TIMESTAMP '{m.end:%Y-%m-%d}'"
    values = ", ".join(f"({i}, {ci}, '{f}', {lit(up, 'DECIMAL(18,2)')})" for i, (ci, f, up) in enumerate(m.purchases))
    # fmt: off
    purchases = internal_select({
        "ba": "c.ba", "sa": "c.sa", "si": "c.si", "sku": "c.csku", "rg": "c.rg", "cps": start,
        "cpe": f"{start} + INTERVAL 1 DAY", "cat": "'Purchase'", "freq": "freq", "pcat": "'Standard'",
        "descr": "c.name || CASE freq WHEN 'One-Time' THEN ' upfront payment' ELSE ' monthly fee' END",
        "spot": "FALSE", "q": "q", "p": "p", "pc": "p", "lc": "p * q", "cc": "p * q", "billed": "p * q", "eff": "0",
        "cidx": "ci", "cdq": "q", "rid": "c.id", "rname": "c.rname", "rtype": "c.rtype", "ca_cc": "ci",
        "ca_cost": "CASE WHEN c.cat = 'Spend' THEN p * q END", "ca_qty": "CASE WHEN c.cat = 'Usage' THEN q END",
        "ca_unit": "CASE WHEN c.cat = 'Usage' THEN 'Hours' END",
    }, f"""(SELECT *, CAST(CASE WHEN c.cat = 'Usage' THEN c.rate ELSE 1 END AS {PRICE}) AS p,
       CAST(CASE WHEN up IS NOT NULL THEN up WHEN c.cat = 'Usage' THEN coalesce(s_cdq, 0)
            ELSE coalesce(s_eff, 0) END AS {QTY}) AS q
     FROM (SELECT t.*, d_commit()[t.ci + 1] AS c, a.eff AS s_eff, a.cdq AS s_cdq
           FROM (VALUES {values}) t(ord, ci, freq, up)
           LEFT JOIN agg a ON a.by_account = 0 AND a.cidx = t.ci))""", "ord")
    money = {"lc": "amt", "cc": "amt", "billed": "amt", "eff": "amt", "spot": "FALSE", "freq": "'One-Time'"}
    taxes = internal_select({
        "ba": "ba", "si": "si", "cps": f"{end} - INTERVAL 1 DAY", "cpe": end, "cat": "'Tax'",
        "descr": "b.tax_name || ' on ' || d_svc()[si + 1].name", **money,
    }, """(SELECT t.*, round(coalesce(a.billed, 0) * b.tax, 2) AS amt
     FROM (SELECT ord, tp.ba AS ba, tp.si AS si, d_ba()[tp.ba + 1] AS b
           FROM (SELECT unnest(d_taxpairs()) AS tp, unnest(range(len(d_taxpairs()))) AS ord)) t
     LEFT JOIN agg a ON a.by_account = 1 AND a.ba = t.ba AND a.si = t.si)""", "ord")
    credits = internal_select({
        "ba": "ba", "si": "si", "cps": f"{start} + INTERVAL 14 DAY", "cpe": f"{start} + INTERVAL 15 DAY",
        "cat": "'Credit'", "descr": "'SLA service credit for ' || d_svc()[si + 1].name", **money,
    }, f"""(SELECT t.*, -greatest(round(coalesce(a.billed, 0) * CAST(5 + {m.h("t.ba", "'rate'")} % 6
                       AS DECIMAL(18,0)) * CAST('0.01' AS DECIMAL(3,2)), 2), 0.01) AS amt
     FROM (SELECT ba, b, {_pick("b.credit_sis", m.h("ba", "'credit'"))} AS si
           FROM (SELECT ba, d_ba()[ba + 1] AS b
                 FROM (SELECT CAST(range AS INTEGER) AS ba FROM range({len(BILLING_ACCOUNTS)})))) t
     LEFT JOIN agg a ON a.by_account = 1 AND a.ba = t.ba AND a.si = t.si)""", "ba")
    adjustments = internal_select({
        "ba": "ba", "si": "d_ba()[ba + 1].adj_si", "cps": f"{start} + INTERVAL 19 DAY",
        "cpe": f"{start} + INTERVAL 20 DAY", "cat": "'Adjustment'", "descr": "'Support fee adjustment'", **money,
    }, f"""(SELECT ba, CAST(1 + {m.h("ba", "'adj'")} % 20000 AS DECIMAL(18,0)) * CAST('0.01' AS DECIMAL(3,2))
                * CASE WHEN ({m.h("ba", "'adj'")} >> 32) % 3 = 0 THEN -1 ELSE 1 END AS amt
     FROM (SELECT CAST(range AS INTEGER) AS ba FROM range({len(BILLING_ACCOUNTS)})))""", "ba")
    # fmt: on
    parts = ([purchases] if m.purchases else []) + [taxes, credits, adjustments]
    return [f"CREATE OR REPLACE TABLE fixed AS {parts[0]}"] + [f"INSERT INTO fixed {sql}" for sql in parts[1:]]


# -- the FOCUS projection --------------------------------------------------------------------------

PARQUET_TYPES = {
    DataType.STRING: "VARCHAR",
    DataType.DECIMAL: "DECIMAL(38,18)",
    DataType.DATETIME: "TIMESTAMP",
    DataType.JSON: "VARCHAR",
}
_CONTRACT_APPLIED = (
    """CASE WHEN ca_cc IS NOT NULL THEN '{"Elements":[{"ContractId":"' || x.contract || """
    """'","ContractCommitmentId":"' || x.id || '","ContractCommitmentAppliedCost":' || """
    """coalesce(dectxt(ca_cost), 'null') || ',"ContractCommitmentAppliedQuantity":' || """
    """coalesce(dectxt(ca_qty), 'null') || ',"ContractCommitmentAppliedUnit":' || """
    """coalesce('"' || ca_unit || '"', 'null') || '}]}' END"""
)


def focus_exprs(m: Month) -> dict[str, str]:
    """The SQL of each FOCUS Cost and Usage column over the internal row shape and its lookups."""
    # fmt: off
    return {
        "AllocatedMethodId": "am_id", "AllocatedMethodDetails": "a_details", "AllocatedResourceId": "ar_id",
        "AllocatedResourceName": "ar_name", "AllocatedTags": "a_tags", "AvailabilityZone": "az",
        "BilledCost": "billed", "BillingAccountId": "b.id", "BillingAccountName": "b.name",
        "BillingAccountType": "b.type", "BillingCurrency": "b.cur", "BillingPeriodEnd": lit(m.end, "TIMESTAMP"),
        "BillingPeriodStart": lit(m.start, "TIMESTAMP"), "CapacityReservationId": "NULL",
        "CapacityReservationStatus": "NULL", "ChargeCategory": "cat", "ChargeClass": "NULL",
        "ChargeDescription": "descr", "ChargeFrequency": "freq", "ChargePeriodEnd": "cpe", "ChargePeriodStart": "cps",
        "CommitmentDiscountCategory": "c.cat", "CommitmentDiscountId": "c.id", "CommitmentDiscountName": "c.name",
        "CommitmentDiscountQuantity": "cdq", "CommitmentDiscountStatus": "cstatus", "CommitmentDiscountType": "c.type",
        "CommitmentDiscountUnit": "CASE WHEN cdq IS NOT NULL THEN c.unit END", "ConsumedQuantity": "cq",
        "ConsumedUnit": "CASE WHEN cq IS NOT NULL THEN u.cunit END", "ContractApplied": _CONTRACT_APPLIED,
        "ContractedCost": "cc", "ContractedUnitPrice": "pc", "EffectiveCost": "eff", "HostProviderName": "pv.name",
        "InvoiceId": f"{lit(m.invoices, 'VARCHAR[]')}[ba + 1]", "InvoiceIssuerName": "pv.name", "ListCost": "lc",
        "ListUnitPrice": "p", "PricingCategory": "pcat", "PricingCurrency": "b.cur",
        "PricingCurrencyContractedUnitPrice": "pc", "PricingCurrencyEffectiveCost": "eff",
        "PricingCurrencyListUnitPrice": "p", "PricingQuantity": "q",
        "PricingUnit": "CASE WHEN q IS NOT NULL THEN u.punit END", "ProviderName": "pv.name",
        "PublisherName": "pv.name", "RegionId": "g.id", "RegionName": "g.name", "ResourceId": "rid",
        "ResourceName": "rname", "ResourceType": "rtype", "ServiceProviderName": "pv.name", "ServiceCategory": "v.cat",
        "ServiceName": "v.name", "ServiceSubcategory": "v.sub", "SkuId": "u.id", "SkuMeter": "u.meter",
        "SkuPriceDetails": "u.details",
        "SkuPriceId": "u.id || '.' || b.cur || CASE WHEN spot THEN '.SPOT' ELSE '' END",
        "SubAccountId": "s.id", "SubAccountName": "s.name", "SubAccountType": "s.type", "Tags": "tags",
    }
    # fmt: on


def month_sql(m: Month) -> str:
    """All rows of one billing period as typed FOCUS Cost and Usage columns, in catalog order."""
    exprs = focus_exprs(m)
    catalog = cost_and_usage()
    assert set(exprs) == set(catalog.ids), set(exprs) ^ set(catalog.ids)
    rows = "\nUNION ALL\n".join([*_metered(m), "SELECT * FROM fixed"])
    cols = ",\n  ".join(f'CAST({exprs[c.id]} AS {PARQUET_TYPES[c.data_type]}) AS "{c.id}"' for c in catalog.columns)
    return f"""SELECT
  {cols}
FROM (SELECT r.*, d_ba()[r.ba + 1] AS b, d_prov()[d_ba()[r.ba + 1].p + 1] AS pv, d_sa()[r.sa + 1] AS s,
             d_svc()[r.si + 1] AS v, d_sku()[r.sku + 1] AS u, d_rg()[r.rg + 1] AS g, d_commit()[r.cidx + 1] AS c,
             d_cc()[r.ca_cc + 1] AS x
      FROM ({rows}) r)"""


# -- Contract Commitment -----------------------------------------------------------------------


def add_months(day: datetime, months: int) -> datetime:
    index = day.year * 12 + day.month - 1 + months
    return day.replace(year=index // 12, month=index % 12 + 1)


def commitment_term(c: Commitment, start: datetime) -> tuple[datetime, datetime]:
    begin = add_months(start, -c.months_before_start)
    return begin, add_months(begin, TERM_MONTHS)


def term_hours(c: Commitment, start: datetime) -> int:
    begin, end = commitment_term(c, start)
    return int((end - begin).total_seconds()) // 3600


def upfront(c: Commitment, start: datetime) -> Decimal:
    """What an all-upfront savings plan costs: its hourly commitment over the whole term."""
    return D(c.hourly or 0) * term_hours(c, start)


def contract_commitment_sql(start: datetime) -> str:
    """The Contract Commitment dataset: one row per commitment discount and per negotiated commitment."""
    rows: list[dict[str, Any]] = []
    for c in COMMITMENTS:
        begin, end = commitment_term(c, start)
        qty = D(c.units * term_hours(c, start)) if c.category == "Usage" else None
        cost = D(c.rate or 0) * qty if qty is not None else upfront(c, start)
        currency = BILLING_ACCOUNTS[c.billing_account][3]
        rows.append({"ContractCommitmentId": c.id, "ContractCommitmentType": c.type,
                     "ContractCommitmentCategory": c.category, "ContractCommitmentCost": cost,
                     "ContractCommitmentQuantity": qty, "ContractCommitmentUnit": "Hours" if qty else None,
                     "ContractCommitmentDescription": c.name, "ContractId": c.contract_id,
                     "BillingCurrency": currency, "begin": begin, "end": end})  # fmt: skip
    for contract, cid, ctype, desc, total, currency, before in NEGOTIATED:
        begin = add_months(start, -before)
        rows.append({"ContractCommitmentId": cid, "ContractCommitmentType": ctype,
                     "ContractCommitmentCategory": "Spend", "ContractCommitmentCost": D(total),
                     "ContractCommitmentDescription": desc, "ContractId": contract, "BillingCurrency": currency,
                     "begin": begin, "end": add_months(begin, TERM_MONTHS)})  # fmt: skip
    columns = contract_commitment().columns
    values = []
    for row in rows:
        for prefix in ("ContractCommitmentPeriod", "ContractPeriod"):  # a contract spans its one commitment
            row[prefix + "Start"], row[prefix + "End"] = row["begin"], row["end"]
        values.append("(" + ", ".join(lit(row.get(c.id), PARQUET_TYPES[c.data_type]) for c in columns) + ")")
    names = ", ".join(f'"{c.id}"' for c in columns)
    return "SELECT * FROM (VALUES\n  " + ",\n  ".join(values) + f") t({names})"
