"""Dependencies of pglease from ConanCenter, mirroring the Debian 12 packages in
deploy/install-deps.sh. The PostgreSQL *server* (for the embedded cluster and the tests) is not
a Conan package: install it from your distribution."""

from conan import ConanFile
from conan.tools.cmake import CMakeDeps, CMakeToolchain


class PgleaseConan(ConanFile):
    name = "pglease"
    settings = "os", "compiler", "build_type", "arch"

    def requirements(self):
        self.requires("boost/1.81.0")
        self.requires("libpq/15.4")
        self.requires("nlohmann_json/3.11.2")
        self.requires("spdlog/1.10.0")
        self.requires("prometheus-cpp/1.0.1")
        self.requires("cli11/2.1.2")
        self.requires("openssl/3.0.13")

    def build_requirements(self):
        self.test_requires("gtest/1.12.1")

    def configure(self):
        # Only header-only parts of Boost are used (Asio, Beast, Process v2).
        self.options["boost"].header_only = True
        self.options["prometheus-cpp"].with_pull = False
        self.options["prometheus-cpp"].with_push = False

    def generate(self):
        CMakeDeps(self).generate()
        toolchain = CMakeToolchain(self)
        toolchain.generator = "Ninja"
        toolchain.generate()
