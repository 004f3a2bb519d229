import pandas as pd
import pytest

from harness.errors import HarnessError
from harness.scoring.groundtruth import COLUMNS, load_ground_truth
from harness.scoring.gt_convert import DATASET_KEYS, table_from_api
from harness.spaces.nb201.arch import NUM_ARCHS, Arch


def test_loads_every_architecture_with_the_published_optima(data_dir):
    gt = load_ground_truth(root=data_dir)
    assert len(gt.table) == NUM_ARCHS
    assert gt.best("cifar10_test") == pytest.approx(94.3733, abs=1e-3)
    assert gt.best("cifar100_test") == pytest.approx(73.5133, abs=1e-3)
    assert gt.best("imagenet16_120_test") == pytest.approx(47.3111, abs=1e-3)


def test_missing_file_says_how_to_build_it(tmp_path):
    with pytest.raises(HarnessError, match="ground-truth file not found .*convert-gt"):
        load_ground_truth(root=tmp_path)


def test_truncated_table_is_rejected(tmp_path, data_dir):
    table = pd.read_csv(data_dir / "nb201" / "nb201_accuracy.csv").head(100)
    path = tmp_path / "gt.csv"
    table.to_csv(path, index=False)
    with pytest.raises(HarnessError, match="has 100 rows; expected 15625"):
        load_ground_truth(path)


class StandInAPI:
    """Mimics the part of nas_201_api / nats_bench the converter uses: len, arch(i), get_more_info."""

    def __init__(self):
        self.calls = []

    def __len__(self):
        return NUM_ARCHS

    def arch(self, index):
        return str(Arch.from_code(NUM_ARCHS - 1 - index))

    def get_more_info(self, index, dataset, hp="12", is_random=True):
        self.calls.append((dataset, hp, is_random))
        offset = {"cifar10": 0.0, "cifar100": 100.0, "ImageNet16-120": 200.0}[dataset]
        return {"test-accuracy": offset + index / 1000.0, "train-loss": 0.0}


def test_converter_reads_every_architecture_with_recorded_keys():
    api = StandInAPI()
    table = table_from_api(api, hp="200")
    assert list(table.columns) == ["index", "arch", *COLUMNS]
    assert table["arch"].iloc[0] == str(Arch.from_code(NUM_ARCHS - 1))
    assert table["cifar100_test"].iloc[7] == pytest.approx(100.007)
    assert {c[0] for c in api.calls} == set(DATASET_KEYS.values())
    assert all(hp == "200" and is_random is False for _, hp, is_random in api.calls)


def test_converter_rejects_a_different_space():
    class Small(StandInAPI):
        def __len__(self):
            return 6466

    with pytest.raises(HarnessError, match="holds 6466 architectures"):
        table_from_api(Small())
