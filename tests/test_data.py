import functools
import http.server
import threading

import numpy as np
import pytest
import torch

from harness.data.cifar import load_split
from harness.data.download import install, md5_file
from harness.data.tensors import DataConfig, DeviceData, augment
from harness.errors import HarnessError
from tests.helpers import cifar10_archive, tar_with_member, write_cifar10_folder


def test_reader_handles_short_batches_and_byte_keys(tmp_path):
    write_cifar10_folder(tmp_path, rows_per_batch=37)
    train = load_split("cifar10", "train", tmp_path)
    test = load_split("cifar10", "test", tmp_path)
    assert train.images.shape == (5 * 37, 3, 32, 32) and train.images.dtype == np.uint8
    assert len(train.labels) == 5 * 37 and test.images.shape[0] == 37


def test_reader_layout_is_channel_planes_row_major(tmp_path):
    from tests.helpers import write_cifar_batch

    data, _ = write_cifar_batch(tmp_path / "cifar10" / "cifar-10-batches-py" / "test_batch", 3)
    images = load_split("cifar10", "test", tmp_path).images
    assert images[1, 0, 0, 1] == data[1, 1]  # red plane first
    assert images[1, 1, 0, 0] == data[1, 1024]  # then green
    assert images[2, 2, 31, 31] == data[2, 3071]


def test_workplace_subset_row_counts(data_dir):
    train = load_split("cifar10", "train", data_dir)
    test = load_split("cifar10", "test", data_dir)
    assert len(train.labels) == 5590 and len(test.labels) == 1017
    c100 = load_split("cifar100", "train", data_dir)
    assert len(c100.labels) == 1117 and c100.labels.max() < 100


def test_corrupt_pickle_is_a_one_line_error(tmp_path):
    folder = write_cifar10_folder(tmp_path, 4)
    (folder / "data_batch_3").write_bytes(b"\x80\x02not a pickle at all")
    with pytest.raises(HarnessError, match="corrupt CIFAR batch file .*data_batch_3") as err:
        load_split("cifar10", "train", tmp_path)
    assert "\n" not in str(err.value)


def test_missing_directory_says_how_to_get_it(tmp_path):
    with pytest.raises(HarnessError, match="python -m harness download cifar10"):
        load_split("cifar10", "train", tmp_path / "nowhere")


def test_splits_are_disjoint_and_fixed_by_split_seed(env_data):
    cfg = DataConfig(resolution=8, holdout_images=500, train_images=1000, batch_size=50, eval_images=500)
    a, b = DeviceData(cfg), DeviceData(cfg)
    assert not set(a.split.train_rows) & set(a.split.holdout_rows)
    assert a.split.holdout_rows == b.split.holdout_rows
    other = DeviceData(DataConfig(**{**cfg.__dict__, "split_seed": 1}))
    assert other.split.holdout_rows != a.split.holdout_rows
    assert a.train_x.shape == (1000, 3, 8, 8)


def test_batches_are_a_function_of_seed_and_step(env_data):
    data = DeviceData(DataConfig(resolution=8, holdout_images=100, train_images=200, batch_size=50, eval_images=100))
    x1, y1 = data.train_batch(3, 7)
    x2, y2 = data.train_batch(3, 7)
    assert torch.equal(x1, x2) and torch.equal(y1, y2)
    assert not torch.equal(data.train_batch(4, 7)[0], x1)


@pytest.mark.parametrize("epoch", [0, 1])
def test_an_epoch_draws_every_training_row_exactly_once(env_data, epoch):
    data = DeviceData(DataConfig(resolution=8, holdout_images=100, train_images=200, batch_size=50, eval_images=100, augment=False))
    # Without augmentation a batch is train_x[rows]: find each image's row by exact equality.
    flat = data.train_x.flatten(1)
    assert len(torch.unique(flat, dim=0)) == 200  # every training image is distinguishable
    rows = []
    for step in range(epoch * data.steps_per_epoch, (epoch + 1) * data.steps_per_epoch):
        x, y = data.train_batch(0, step)
        match = (x.flatten(1)[:, None, :] == flat[None, :, :]).all(dim=-1)  # (batch, train rows)
        assert torch.equal(match.sum(dim=1), torch.ones(len(x), dtype=torch.long))
        batch_rows = match.float().argmax(dim=1)
        assert torch.equal(y, data.train_y[batch_rows])
        rows.extend(batch_rows.tolist())
    assert data.steps_per_epoch == 4 and sorted(rows) == list(range(200))


def test_augment_is_a_shifted_possibly_flipped_window():
    x = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).view(2, 3, 8, 8)
    out = augment(x, torch.Generator().manual_seed(0))
    assert out.shape == x.shape
    padded = torch.nn.functional.pad(x, (1, 1, 1, 1))
    for b in range(2):
        windows = [padded[b, :, dy : dy + 8, dx : dx + 8] for dy in range(3) for dx in range(3)]
        windows += [w.flip(-1) for w in windows]
        assert any(torch.equal(out[b], w) for w in windows)


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def loopback_server(tmp_path):
    served = tmp_path / "served"
    served.mkdir()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(served)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield served, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_download_verifies_md5_and_extracts_atomically(tmp_path, loopback_server):
    served, base = loopback_server
    archive = cifar10_archive(served / "cifar-10-python.tar.gz")
    root = tmp_path / "data"
    folder = install("cifar10", root, url=f"{base}/cifar-10-python.tar.gz", md5=md5_file(archive))
    assert load_split("cifar10", "train", root).images.shape[0] == 40
    assert sorted(p.name for p in folder.parent.iterdir()) == ["cifar-10-batches-py"]  # no temp leftovers


def test_download_md5_mismatch_leaves_nothing(tmp_path, loopback_server):
    served, base = loopback_server
    cifar10_archive(served / "cifar-10-python.tar.gz")
    root = tmp_path / "data"
    with pytest.raises(HarnessError, match="md5 mismatch"):
        install("cifar10", root, url=f"{base}/cifar-10-python.tar.gz", md5="0" * 32)
    assert not (root / "cifar10" / "cifar-10-batches-py").exists()
    assert list((root / "cifar10").iterdir()) == []


def test_download_offline_is_a_clear_error(tmp_path):
    # Port 9 on loopback: nothing listens, the connection is refused at once.
    with pytest.raises(HarnessError, match="could not download http://127.0.0.1:9/"):
        install("cifar10", tmp_path, url="http://127.0.0.1:9/cifar-10-python.tar.gz")


def test_download_refuses_path_traversal(tmp_path):
    archive = tar_with_member(tmp_path / "evil.tar.gz", "../escape.txt")
    with pytest.raises(HarnessError, match="unsafe archive member"):
        install("cifar10", tmp_path / "data", archive=archive, md5=md5_file(archive))
    assert not (tmp_path / "escape.txt").exists()


def test_official_test_images_can_join_the_holdout_and_are_never_trained_on(env_data):
    cfg = DataConfig(resolution=8, holdout_images=100, train_images=300, batch_size=50, eval_images=1117, holdout_test=True)
    data = DeviceData(cfg)
    assert len(data.holdout_y) == 100 + 1017 and data.holdout_test_images == 1017
    assert any(str(f).endswith("test_batch") for f in data.files)
    assert data.describe()["holdout_test_images"] == 1017
    with pytest.raises(HarnessError, match="exceeds the 1117 held-out images"):
        DeviceData(DataConfig(**{**cfg.__dict__, "eval_images": 1200}))
