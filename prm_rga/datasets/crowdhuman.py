"""CrowdHuman as an mmdet dataset: full-body boxes of persons, everything else ignore regions."""

import os.path as osp

from mmdet.datasets import BaseDetDataset
from mmdet.registry import DATASETS
from PIL import Image

from prm_rga.errors import InputError
from prm_rga_eval.crowdhuman import is_person, load_odgt


@DATASETS.register_module()
class CrowdHumanODGTDataset(BaseDetDataset):
    """Images ``data_prefix['img']/{ID}.{img_ext}`` with the ``fbox`` boxes of an ``.odgt`` file.

    Persons (``tag == 'person'``, ``extra.ignore == 0``: the benchmark's rule) are instances
    with ``ignore_flag=0``; every other box is an ignore region, ``ignore_flag=1``. Both have
    ``bbox_label=0``, so an ignore region reads as a crowd of persons, as COCO's crowd boxes
    keep their class. Boxes are clipped to the image; boxes left empty by clipping are dropped.
    The image size is the record's ``width``/``height`` when present, else read from the
    image header. ``img_ext``: 'jpg' as CrowdHuman ships; 'png' for the synthetic crowd set.
    ``filter_cfg`` (training only): ``filter_empty_gt`` drops images without a person,
    ``min_size`` images smaller than it, as mmdet's CocoDataset.

    A name of our own, beside mmdet's ``CrowdHumanDataset`` (left as mmdet registers it), which
    needs an image-size cache file and keeps unclipped boxes.
    """

    METAINFO = {'classes': ('person', ), 'palette': [(220, 20, 60)]}

    def __init__(self, *args, img_ext='jpg', **kwargs):
        self.img_ext = img_ext
        super().__init__(*args, **kwargs)

    def load_data_list(self):
        records = load_odgt(self.ann_file)
        img_dir = self.data_prefix.get('img', '')
        if not osp.isdir(img_dir):
            raise InputError(f"{img_dir}: no such image folder (data_prefix['img'])")
        data_list = []
        for record in records:
            img_path = osp.join(img_dir, f'{record["ID"]}.{self.img_ext}')
            width, height = record.get('width'), record.get('height')
            if width is None or height is None:
                width, height = _image_size(img_path, self.ann_file, record['ID'])
            instances = []
            for box in record['gtboxes']:
                x, y, w, h = box['fbox']
                x1, y1 = min(max(x, 0), width), min(max(y, 0), height)
                x2, y2 = min(max(x + w, 0), width), min(max(y + h, 0), height)
                if x2 > x1 and y2 > y1:
                    instances.append(dict(bbox=[x1, y1, x2, y2], bbox_label=0,
                                          ignore_flag=0 if is_person(box) else 1))
            data_list.append(dict(img_path=img_path, img_id=record['ID'], width=width,
                                  height=height, instances=instances))
        return data_list

    def filter_data(self):
        if self.test_mode or not self.filter_cfg:
            return self.data_list
        empty_ok = not self.filter_cfg.get('filter_empty_gt', False)
        min_size = self.filter_cfg.get('min_size', 0)
        return [d for d in self.data_list
                if min(d['width'], d['height']) >= min_size
                and (empty_ok or any(not i['ignore_flag'] for i in d['instances']))]


def _image_size(img_path, ann_file, image_id):
    try:
        with Image.open(img_path) as img:
            return img.size
    except FileNotFoundError:
        raise InputError(f'{img_path}: image of ID {image_id!r} in {ann_file} not found') from None
    except OSError as e:
        raise InputError(f'{img_path}: cannot read the image of ID {image_id!r} ({e})') from None
