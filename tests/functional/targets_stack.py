"""Test support: the reconciler's stack plus the in-VPC targets pieces of
``cloudformation/turnout.yaml`` (VPC, two subnets in two AZs, internal ALB, HTTP listener with a
fixed 404, VPC link), created on the embedded AWS endpoint with the same shape, and readers
for what the reconciler made on the ALB."""

from __future__ import annotations

from dataclasses import dataclass

from local_cloud import patches
from tests.functional.stack import Stack

NOT_FOUND_BODY = '{"message":"No turnout route matches this request"}'


@dataclass
class TargetsStack(Stack):
    vpc_id: str = ""
    load_balancer_arn: str = ""
    load_balancer_dns: str = ""
    listener_arn: str = ""
    vpc_link_id: str = ""

    @property
    def env(self) -> dict[str, str]:
        return {
            **super().env,
            "VPC_LINK_ID": self.vpc_link_id,
            "LOAD_BALANCER_ARN": self.load_balancer_arn,
            "LOAD_BALANCER_DNS": self.load_balancer_dns,
            "LISTENER_ARN": self.listener_arn,
            "VPC_ID": self.vpc_id,
            "TURNOUT_ALLOW_LOOPBACK_UPSTREAMS": "true",
        }

    def create(self) -> TargetsStack:
        patches.apply_patches()  # ip targets keyed by (ip, port), as on AWS
        super().create()
        ec2 = self.aws.client("ec2")
        self.vpc_id = ec2.create_vpc(CidrBlock="10.64.0.0/16")["Vpc"]["VpcId"]
        subnets = [
            ec2.create_subnet(VpcId=self.vpc_id, CidrBlock=cidr, AvailabilityZone=zone)[
                "Subnet"]["SubnetId"]
            for cidr, zone in (("10.64.0.0/20", "us-east-1a"), ("10.64.16.0/20", "us-east-1b"))
        ]
        group = ec2.create_security_group(GroupName="alb", Description="alb",
                                          VpcId=self.vpc_id)["GroupId"]
        elbv2 = self.aws.client("elbv2")
        balancer = elbv2.create_load_balancer(
            Name="turnout-targets", Subnets=subnets, SecurityGroups=[group], Scheme="internal",
            Type="application",
            Tags=[{"Key": "turnout:health-table", "Value": self.state_table}],
        )["LoadBalancers"][0]
        self.load_balancer_arn = balancer["LoadBalancerArn"]
        self.load_balancer_dns = balancer["DNSName"]
        self.listener_arn = elbv2.create_listener(
            LoadBalancerArn=self.load_balancer_arn, Protocol="HTTP", Port=80,
            DefaultActions=[{"Type": "fixed-response", "FixedResponseConfig": {
                "StatusCode": "404", "ContentType": "application/json",
                "MessageBody": NOT_FOUND_BODY}}],
        )["Listeners"][0]["ListenerArn"]
        self.vpc_link_id = self.aws.client("apigatewayv2").create_vpc_link(
            Name="turnout-targets", SubnetIds=subnets, SecurityGroupIds=[group])["VpcLinkId"]
        return self

    # ---- reading the ALB back -----------------------------------------------------------

    def target_groups(self) -> dict[str, dict]:
        """turnout's target groups by upstream tag, each with ``Tags`` and ``Targets``."""
        elbv2 = self.aws.client("elbv2")
        groups = [g for g in elbv2.describe_target_groups()["TargetGroups"]
                  if g["TargetGroupName"].startswith("tt-")]
        out: dict[str, dict] = {}
        for group in groups:
            [described] = elbv2.describe_tags(ResourceArns=[group["TargetGroupArn"]])[
                "TagDescriptions"]
            tags = {t["Key"]: t["Value"] for t in described["Tags"]}
            health = elbv2.describe_target_health(TargetGroupArn=group["TargetGroupArn"])
            group["Tags"] = tags
            group["Targets"] = {(d["Target"]["Id"], d["Target"]["Port"])
                                for d in health["TargetHealthDescriptions"]}
            out[f"{tags.get('turnout:route')}/{tags.get('turnout:upstream')}"] = group
        return out

    def rules(self) -> list[dict]:
        """The listener's rules other than the default one, each with its ``Tags``."""
        elbv2 = self.aws.client("elbv2")
        rules = [r for r in elbv2.describe_rules(ListenerArn=self.listener_arn)["Rules"]
                 if not r["IsDefault"]]
        for rule in rules:
            [described] = elbv2.describe_tags(ResourceArns=[rule["RuleArn"]])["TagDescriptions"]
            rule["Tags"] = {t["Key"]: t["Value"] for t in described["Tags"]}
        return rules

    def rule_weights(self, route_id: str) -> dict[str, int]:
        """Upstream name -> weight in the route's rule."""
        groups = {g["TargetGroupArn"]: key.split("/", 1)[1]
                  for key, g in self.target_groups().items() if key.startswith(route_id + "/")}
        [rule] = [r for r in self.rules() if r["Tags"].get("turnout:route") == route_id]
        [action] = rule["Actions"]
        return {groups[g["TargetGroupArn"]]: g["Weight"]
                for g in action["ForwardConfig"]["TargetGroups"]}
