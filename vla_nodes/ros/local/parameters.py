# Copyright 2026 vla_nodes developers
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
# You may obtain a copy of the License at
#
#     http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS,
# WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
# See the License for the specific language governing permissions and
# limitations under the License.


"""Parameter handling of a local node (declare, get, set, overrides)."""

from vla_nodes.ros import params as P


class NodeParameters:
    """A node's parameters: overrides, declaration, get and set (rclpy's semantics)."""

    def _collect_overrides(self, args: P.RosArgs, parameter_overrides) -> dict:
        overrides = {}
        for path in args.params_files:
            overrides.update(P.load_params_file(path, self.get_fully_qualified_name()))
        for node, name, value in args.params:
            # rcl keys '-p node:name:=v' like a parameter file's 'node:' (root namespace only).
            if node is None or P.node_key_matches(node, self.get_fully_qualified_name()):
                overrides[name] = value
        for param in parameter_overrides or []:
            overrides[param.name] = param.value
        return overrides

    def declare_parameter(self, name, value=None, descriptor=None, ignore_override=False):
        if name in self._parameters:
            raise P.ParameterAlreadyDeclaredException(f"parameter '{name}' is already declared")
        descriptor = descriptor or P.ParameterDescriptor()
        if isinstance(value, P.ParameterType):
            declared, value = value, None
        else:
            declared = P.ParameterType.from_parameter_value(value)
        if not ignore_override and name in self._overrides:
            value = self._overrides[name]
            P.check_type(name, declared, value, descriptor.dynamic_typing)
        if value is not None:
            P.check_range(name, value, descriptor)
        self._descriptors[name] = (declared, descriptor)
        param = P.Parameter(name, value=value)
        self._parameters[name] = param
        return param

    def declare_parameters(self, namespace, parameters):
        prefix = f'{namespace}.' if namespace else ''
        return [self.declare_parameter(prefix + p[0], *p[1:]) for p in parameters]

    def has_parameter(self, name) -> bool:
        return name in self._parameters

    def get_parameter(self, name) -> P.Parameter:
        if name not in self._parameters:
            if self._allow_undeclared:
                return P.Parameter(name, P.ParameterType.NOT_SET, None)
            raise P.ParameterNotDeclaredException(
                f"parameter '{name}' is not declared by node {self.get_fully_qualified_name()}")
        return self._parameters[name]

    def get_parameters(self, names) -> list:
        return [self.get_parameter(n) for n in names]

    def get_parameter_or(self, name, alternative_value=None) -> P.Parameter:
        return self._parameters.get(name, alternative_value)

    def add_on_set_parameters_callback(self, callback) -> None:
        self._set_callbacks.insert(0, callback)

    def set_parameters(self, parameter_list) -> list:
        return [self._set_one(p) for p in parameter_list]

    def _set_one(self, param) -> P.SetParametersResult:
        if param.name not in self._parameters and not self._allow_undeclared:
            raise P.ParameterNotDeclaredException(f"parameter '{param.name}' is not declared")
        declared, descriptor = self._descriptors.get(
            param.name, (P.ParameterType.NOT_SET, P.ParameterDescriptor(dynamic_typing=True)))
        if descriptor.read_only:
            return P.SetParametersResult(False, f"parameter '{param.name}' is read-only")
        try:
            P.check_type(param.name, declared, param.value, descriptor.dynamic_typing)
            P.check_range(param.name, param.value, descriptor)
        except (P.InvalidParameterTypeException, P.InvalidParameterValueException) as err:
            return P.SetParametersResult(False, str(err))
        for callback in self._set_callbacks:
            result = callback([param])
            if not result.successful:
                return result
        self._parameters[param.name] = param
        if param.name == 'use_sim_time':
            self._apply_sim_time(bool(param.value))
        return P.SetParametersResult(True)
