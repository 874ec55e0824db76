"""The dbt project location, importable without building assets (which need the manifest)."""

from dagster_dbt import DbtProject

from spark_jobs.settings import REPO_ROOT

dbt_project = DbtProject(project_dir=REPO_ROOT / "dbt")


def prepare_manifest() -> None:
    """Run ``dbt parse`` so dbt/target/manifest.json matches the models (./cdp does it first)."""
    dbt_project.preparer.prepare(dbt_project)
