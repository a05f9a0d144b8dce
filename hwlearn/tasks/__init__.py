"""Tasks: what a network learns. Adding a task is one module with a Task subclass."""

from hwlearn.tasks.base import Dataset, Task
from hwlearn.tasks.iris import IrisTask, load_iris, stratified_split
from hwlearn.tasks.teacher import TeacherTask

__all__ = ["Dataset", "IrisTask", "Task", "TeacherTask", "load_iris", "stratified_split"]
