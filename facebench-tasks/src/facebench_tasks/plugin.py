"""Registers the tasks, analyses and standard datasets of this package; importing it imports no
task module."""

from __future__ import annotations

from collections.abc import Callable

import facebench
from facebench import AnalysisSpec, DatasetFile, DatasetSpec, TaskSpec

TASKS = (
    TaskSpec(
        "accuracy",
        "facebench_tasks.accuracy:AccuracyTask",
        "Verification: 10-fold cross-validated accuracy, AUC, EER, TAR@FAR, in-sample accuracy",
    ),
    TaskSpec(
        "correlation",
        "facebench_tasks.correlation:CorrelationTask",
        "Correlation of model distances with human distances, bootstrap CI",
    ),
    TaskSpec(
        "conditioned-average-distances",
        "facebench_tasks.conditioned_average:ConditionedAverageDistances",
        "Mean (normalised) distance per condition",
    ),
    TaskSpec(
        "rsa",
        "facebench_tasks.rsa:RSATask",
        "RSA with rsatoolbox: layer RDM vs human RDMs, noise ceiling, bootstrap CI",
    ),
    TaskSpec(
        "relative-difference",
        "facebench_tasks.relative_difference:RelativeDifferenceTask",
        "(m1 - m2) / (m1 + m2) between two groups, e.g. the Thatcher effect",
    ),
    TaskSpec(
        "probe",
        "facebench_tasks.probe:ProbeTask",
        "Cross-validated linear decoding of a per-image label (images table), chance level",
    ),
    TaskSpec(
        "adaptation",
        "facebench_tasks.adaptation:AdaptationTask",
        "A map on frozen embeddings trained on matched pairs (InfoNCE); held-out retrieval",
    ),
)


@facebench.hookimpl
def register_tasks(register: Callable[[TaskSpec], None]) -> None:
    for spec in TASKS:
        register(spec)


ANALYSES = (
    AnalysisSpec(
        "cka",
        "facebench_tasks.cka:CKAAnalysis",
        "Linear and debiased linear CKA between every layer of every model (Gram matrices, chunked)",
    ),
)


@facebench.hookimpl
def register_analyses(register: Callable[[AnalysisSpec], None]) -> None:
    for spec in ANALYSES:
        register(spec)


LFW_SITE = "http://vis-www.cs.umass.edu/lfw/"
LFW_LICENSE = "no license stated: images collected from the web, shared by its authors for research"
LFW_PAIRS = DatasetFile(
    "pairs.txt",
    "ea42330c62c92989f9d7c03237ed5d591365e89b3e649747777b70e692dc1592",
    "https://ndownloader.figshare.com/files/5976006",
)
ASKED = "not redistributed: its authors share it on request"
DATASETS = (
    DatasetSpec(
        "lfw",
        "facebench_tasks.datasets:read_lfw",
        "LFW View 2: 6,000 pairs in 10 official folds (pairs.txt); or lfw.bin",
        files=(
            LFW_PAIRS,
            DatasetFile(
                "lfw.tgz",
                "055f7d9c632d7370e6fb4afc7468d40f970c34a80d4c6f50ffec63f5a8d536c0",
                "https://ndownloader.figshare.com/files/5976018",
                unpack=True,
            ),
        ),
        license=LFW_LICENSE,
        request=LFW_SITE,
    ),
    DatasetSpec(
        "lfw-funneled",
        "facebench_tasks.datasets:read_lfw_funneled",
        "LFW View 2 on the funnelled (aligned) images",
        files=(
            LFW_PAIRS,
            DatasetFile(
                "lfw-funneled.tgz",
                "b47c8422c8cded889dc5a13418c4bc2abbda121092b3533a83306f90d900100a",
                "https://ndownloader.figshare.com/files/5976015",
                unpack=True,
            ),
        ),
        license=LFW_LICENSE,
        request=LFW_SITE,
    ),
    DatasetSpec(
        "lfw-deepfunneled",
        "facebench_tasks.datasets:read_lfw_deepfunneled",
        "LFW View 2 on the deep-funnelled images (lfw-deepfunneled/)",
        files=(LFW_PAIRS, DatasetFile("lfw-deepfunneled.tgz", unpack=True)),
        license=LFW_LICENSE + "; download lfw-deepfunneled.tgz from the LFW site",
        request=LFW_SITE,
    ),
    DatasetSpec(
        "calfw",
        "facebench_tasks.datasets:read_calfw",
        "Cross-Age LFW: 6,000 pairs, 10 folds (pairs_CALFW.txt); or calfw.bin",
        license=ASKED,
        request="http://whdeng.cn/CALFW/",
    ),
    DatasetSpec(
        "cplfw",
        "facebench_tasks.datasets:read_cplfw",
        "Cross-Pose LFW: 6,000 pairs, 10 folds (pairs_CPLFW.txt); or cplfw.bin",
        license=ASKED,
        request="http://whdeng.cn/CPLFW/",
    ),
    DatasetSpec(
        "cfp-fp",
        "facebench_tasks.datasets:read_cfp_fp",
        "CFP frontal-profile: 7,000 pairs in 10 official splits (Protocol/Split/FP); or cfp_fp.bin",
        license=ASKED,
        request="http://www.cfpw.io/",
    ),
    DatasetSpec(
        "agedb-30",
        "facebench_tasks.datasets:read_agedb_30",
        "AgeDB-30: 6,000 pairs 30 years apart, 10 folds (InsightFace's agedb_30.bin)",
        license=ASKED + " after signing their agreement",
        request="https://ibug.doc.ic.ac.uk/resources/agedb/",
    ),
)


@facebench.hookimpl
def register_datasets(register: Callable[[DatasetSpec], None]) -> None:
    for spec in DATASETS:
        register(spec)
